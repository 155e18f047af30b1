"""The pre-refund risk query: read a subject's reports, score them, never name members.

``RiskQueries.answer`` is the whole query: it scores, records the audit event durably
(through the group-commit writer) and only then returns the answer, with the event's
id. A query refused for its input is audited too (``RiskQueries.refuse``). Routers call
these and write no audit events of their own. A subject with no reports and one whose
reports all expired or were withdrawn get the same answer, built the same way.

The subject's reports come from a ``ReportSource``. ``SessionReports`` reads through a
SQLAlchemy session and serves every database. ``PostgresReports`` is the hot path on
PostgreSQL: one prepared statement on a small read-only asyncpg pool, with no ORM or
Core layer and no per-release connection reset (the statement changes no session state).
``HeldReports`` keeps what it read of a subject until a notification says the subject
changed. All return the same rows; the tests run each against the same cases.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeAlias, cast

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal, require
from ledger.audit.events import shared_body
from ledger.audit.reads import Recorder
from ledger.audit.tags import Tag
from ledger.disputes.models import Dispute, DisputeItem, Resolution
from ledger.errors import InvalidInput, Unavailable
from ledger.i18n import DEFAULT_LOCALE
from ledger.markers.models import ProtectiveMarker
from ledger.reports.models import Report
from ledger.reports.policy import Category, ReportPolicy, State, status
from ledger.scoring import explanations
from ledger.scoring.explanations import Explanation
from ledger.scoring.live import LiveSubjects
from ledger.scoring.policies import PolicySource
from ledger.scoring.score import (
    Assessment,
    Reason,
    Recommendation,
    ScoredReport,
    ScoringPolicy,
    score,
)
from ledger.subjects.pseudonyms import check_pseudonym


class Purpose(StrEnum):
    """What a query may be for (art. 18/20, PIPL art. 6): used for that only."""

    REFUND_REVIEW = "refund_review"
    DISPUTE_REVIEW = "dispute_review"
    ACCOUNT_REVIEW = "account_review"


@dataclass(frozen=True, slots=True)
class ReportRow:
    """A report as scoring reads it, with the deadlines of its open disputes."""

    member_id: uuid.UUID
    category: Category
    state: State
    filed_at: dt.datetime
    notified_at: dt.datetime | None
    expires_at: dt.datetime
    confirmed_at: dt.datetime
    open_dispute_deadlines: tuple[dt.datetime, ...]


@dataclass(frozen=True, slots=True)
class MarkerRow:
    """A protective marker in force on the subject (ledger/markers)."""

    kind: str
    placed_at: dt.datetime
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class SubjectRows:
    reports: tuple[ReportRow, ...]
    marker: MarkerRow | None = None


class ReportSource(Protocol):
    async def read(self, subject: str, now: dt.datetime) -> SubjectRows:
        """The subject's reports not purged and not expired at ``now``, and the
        protective marker in force on them, if any."""
        ...


_REPORTS = sa.select(
    Report.id,
    Report.member_id,
    Report.category,
    Report.state,
    Report.filed_at,
    Report.notified_at,
    Report.expires_at,
    Report.confirmed_at,
).where(
    Report.subject == sa.bindparam("subject"),
    Report.state != State.PURGED,
    Report.expires_at > sa.bindparam("now"),
)

_MARKER = (
    sa.select(ProtectiveMarker.kind, ProtectiveMarker.placed_at, ProtectiveMarker.expires_at)
    .where(
        ProtectiveMarker.subject == sa.bindparam("subject"),
        ProtectiveMarker.removed_at.is_(None),
        ProtectiveMarker.expires_at > sa.bindparam("now"),
    )
    .order_by(ProtectiveMarker.placed_at.desc())
    .limit(1)
)

_DEADLINES = (
    sa.select(DisputeItem.report_id, Dispute.deadline)
    .join(Dispute, Dispute.id == DisputeItem.dispute_id)
    .where(Dispute.subject == sa.bindparam("subject"), DisputeItem.resolution == Resolution.OPEN)
)


async def marker_in_force(
    session: AsyncSession, subject: str, now: dt.datetime
) -> MarkerRow | None:
    """The protective marker in force on ``subject`` at ``now``, if any (one read)."""
    found = (await session.execute(_MARKER, {"subject": subject, "now": now})).first()
    return None if found is None else MarkerRow(str(found[0].value), found[1], found[2])


class SessionReports:
    """Reads through a SQLAlchemy session (Core statements: no ORM objects are built)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def read(self, subject: str, now: dt.datetime) -> SubjectRows:
        rows = list(await self._session.execute(_REPORTS, {"subject": subject, "now": now}))
        marker = await marker_in_force(self._session, subject, now)
        deadlines: dict[uuid.UUID, list[dt.datetime]] = {}
        # Always both reads, so a subject with no reports and one whose reports no
        # longer count take the same path: the work done does not tell them apart.
        for report_id, deadline in await self._session.execute(_DEADLINES, {"subject": subject}):
            deadlines.setdefault(report_id, []).append(deadline)
        found = [
            ReportRow(
                member_id=row.member_id,
                category=row.category,
                state=row.state,
                filed_at=row.filed_at,
                notified_at=row.notified_at,
                expires_at=row.expires_at,
                confirmed_at=row.confirmed_at,
                open_dispute_deadlines=tuple(deadlines.get(row.id, ())),
            )
            for row in rows
        ]
        return SubjectRows(tuple(found), marker)


# One statement, one round trip: every report of the subject not purged, with the
# deadlines of its open disputes as an array, and every protective marker not removed
# as one more row each, its kind in the last column. What is in force at a moment is
# chosen in Python (``rows_at``), so the rows read once serve any later moment until
# the subject changes (``HeldReports``).
_HOT_REPORTS = """
SELECT r.member_id, r.category, r.state, r.filed_at, r.notified_at, r.expires_at,
       r.confirmed_at,
       ARRAY(SELECT d.deadline FROM dispute_items i JOIN disputes d ON d.id = i.dispute_id
             WHERE i.report_id = r.id AND i.resolution = 'open') AS deadlines,
       NULL::varchar AS marker
FROM reports r
WHERE r.subject = $1 AND r.state <> 'purged'
UNION ALL
SELECT NULL, NULL, NULL, m.placed_at, NULL, m.expires_at, NULL, NULL, m.kind
FROM protective_markers m
WHERE m.subject = $1 AND m.removed_at IS NULL
"""


# Everything of a subject that may be in force at some moment (``read_all``), as one
# tuple of parts: each report not purged, as (member id as an int, category, state,
# filed_at, notified_at, expires_at, confirmed_at, *its open disputes' deadlines), then
# each protective marker not removed, newest placed first, as (kind, placed_at,
# expires_at). Only flat tuples of ints, strings and datetimes: the garbage collector
# stops tracking them once it has seen them (a level of nesting a pass), where tens of
# thousands of subjects held as objects made every full collection walk them (about
# 60 ms at 50,000).
HeldRows: TypeAlias = tuple[tuple[Any, ...], ...]
_MARKER_PART = 3  # a marker's part has three fields; a report's, seven or more


def rows_at(held: HeldRows, now: dt.datetime) -> SubjectRows:
    """What ``ReportSource.read`` returns at ``now`` from what was held: the reports not
    expired, and the newest marker in force (``SessionReports``' statements, here)."""
    reports = tuple(
        ReportRow(
            member_id=_member_id(part[0]),
            category=_CATEGORIES[part[1]],  # a dict lookup: Enum(value) costs ~1 µs
            state=_STATES[part[2]],
            filed_at=part[3],
            notified_at=part[4],
            expires_at=part[5],
            confirmed_at=part[6],
            open_dispute_deadlines=part[7:],
        )
        for part in held
        if len(part) > _MARKER_PART and part[5] > now
    )
    marker = next((MarkerRow(*p) for p in held if len(p) == _MARKER_PART and p[2] > now), None)
    if not reports and marker is None:
        return NOTHING
    return SubjectRows(reports, marker)


_MEMBER_IDS: dict[int, uuid.UUID] = {}
_MEMBER_INTS: dict[int, int] = {}


def _shared_int(value: int) -> int:
    """One int object per member id, shared by every held row that names it."""
    if len(_MEMBER_INTS) >= 10_000:
        _MEMBER_INTS.clear()
    return _MEMBER_INTS.setdefault(value, value)


def _member_id(value: int) -> uuid.UUID:
    """One UUID object per member (there are few), made from its int."""
    found = _MEMBER_IDS.get(value)
    if found is None:
        if len(_MEMBER_IDS) >= 10_000:
            _MEMBER_IDS.clear()
        found = _MEMBER_IDS[value] = uuid.UUID(int=value)
    return found


# What says the database cannot serve right now (down, restarting, refusing
# connections, too slow): the caller gets a 503 with Retry-After and may try again.
_UNAVAILABLE = (
    OSError,  # refused, reset, unreachable (ConnectionError is one)
    TimeoutError,  # connect or command timeout
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # the connection was lost mid-use
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections
)
COMMAND_TIMEOUT_SECONDS = 5.0
_CATEGORIES = {c.value: c for c in Category}
_STATES = {s.value: s for s in State}


async def _no_reset(_conn: asyncpg.Connection) -> None:
    """The pool's connections only ever run one read-only statement outside any
    transaction, so there is no session state to reset between uses."""


class PostgresReports:
    """The hot read on PostgreSQL, on its own read-only asyncpg pool (made on first use).

    Reads take their turn in the order they asked. asyncpg's pool hands a returned
    connection to whichever coroutine asks next (an ``asyncio.Queue``): a waiter it has
    woken can be overtaken by a request that arrived after it, and under load a few
    requests lose that race many times over. That was most of the risk query's p99 tail
    (docs/benchmarks.md). ``asyncio.Semaphore`` queues in arrival order and hands a
    released slot straight to the oldest waiter; with one slot per connection, no one
    waits inside the pool.
    """

    def __init__(self, dsn: str, *, size: int) -> None:
        self._dsn = dsn
        self._size = size
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._turns = asyncio.Semaphore(size)

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=1,
                        max_size=self._size,
                        reset=_no_reset,
                        command_timeout=COMMAND_TIMEOUT_SECONDS,
                        server_settings={
                            "application_name": "ledger-risk",
                            "default_transaction_read_only": "on",
                        },
                    )
        return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection of the pool, taken in turn (the live subjects' reads)."""
        pool = await self._get_pool()
        async with self._turns, pool.acquire() as conn:
            yield conn

    async def read(self, subject: str, now: dt.datetime) -> SubjectRows:
        return rows_at(await self.read_all(subject), now)

    async def read_all(self, subject: str) -> HeldRows:
        """Every report of ``subject`` not purged, and every marker not removed."""
        try:
            pool = await self._get_pool()
            async with self._turns:
                rows: list[Any] = await pool.fetch(_HOT_REPORTS, subject)
        except _UNAVAILABLE as exc:
            raise Unavailable(
                "the ledger's database cannot be reached; nothing was recorded, retry shortly"
            ) from exc
        markers: list[tuple[Any, ...]] = []
        found: list[tuple[Any, ...]] = []
        for row in rows:
            if row[8] is not None:
                markers.append((row[8], row[3], row[5]))
                continue
            found.append(
                (
                    _shared_int(row[0].int),
                    _CATEGORIES[row[1]].value,  # one string object for every row
                    _STATES[row[2]].value,
                    *row[3:7],
                    *row[7],
                )
            )
        if len(markers) > 1:
            markers.sort(key=lambda m: m[1], reverse=True)
        return (*found, *markers)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


class HeldReports:
    """The hot read, with each subject's rows held in this process until it changes.

    A buyer with reports is asked about again and again (each refund request, each
    platform); what they have changes seldom. Their rows are kept (``HeldRows``; what
    is in force is chosen at each query's ``now``, so time passing needs no read) until
    a notification names the subject, exactly as the live set learns of changes
    (ledger/scoring/live.py decides what may be held and for how long). A read in flight
    while its subject changes is not held; while the set is off nothing is.
    """

    def __init__(self, hot: PostgresReports, live: LiveSubjects) -> None:
        self._hot = hot
        self._live = live

    async def read(self, subject: str, now: dt.datetime) -> SubjectRows:
        live = self._live
        held = live.held(subject)
        if held is None:
            ticket = live.ticket(subject)
            held = await self._hot.read_all(subject)
            live.hold(subject, ticket, held)
        else:
            live.answered_from_held += 1
        return rows_at(cast(HeldRows, held), now)


async def assess(
    source: ReportSource,
    principal: ClientPrincipal,
    subject: str,
    *,
    now: dt.datetime,
    report_policy: ReportPolicy,
    policy: ScoringPolicy,
) -> tuple[Assessment, MarkerRow | None]:
    """The subject's assessment at ``now``, for a member allowed to ask, and the
    protective marker in force on them. With a marker the recommendation is a manual
    review: a person verifies the buyer's identity (the score itself is unchanged)."""
    require(principal, Permission.RISK_READ)
    check_pseudonym(subject)
    rows = await source.read(subject, now)
    assessment = assessed(rows, now=now, report_policy=report_policy, policy=policy)
    if rows.marker is not None:
        assessment = dataclasses.replace(assessment, recommendation=Recommendation.MANUAL_REVIEW)
    return assessment, rows.marker


async def assessment_of(
    source: ReportSource,
    subject: str,
    *,
    now: dt.datetime,
    report_policy: ReportPolicy,
    policy: ScoringPolicy,
) -> Assessment:
    """The assessment of a pseudonym already checked (the ledger's own use: the new
    assessment a correction carries)."""
    rows = await source.read(subject, now)
    return assessed(rows, now=now, report_policy=report_policy, policy=policy)


def assessed(
    rows: SubjectRows, *, now: dt.datetime, report_policy: ReportPolicy, policy: ScoringPolicy
) -> Assessment:
    """The score of the subject's reports at ``now`` (pure)."""
    if not rows.reports:
        return nothing_scored(policy)
    scored = [
        ScoredReport(
            member_id=row.member_id,
            category=row.category,
            status=status(
                state=row.state,
                filed_at=row.filed_at,
                notified_at=row.notified_at,
                expires_at=row.expires_at,
                dispute_deadlines=list(row.open_dispute_deadlines),
                now=now,
                policy=report_policy,
            ),
            confirmed_at=row.confirmed_at,
        )
        for row in rows.reports
    ]
    return score(scored, now, policy)


_NOTHING_SCORED: dict[int, tuple[ScoringPolicy, Assessment]] = {}


def nothing_scored(policy: ScoringPolicy) -> Assessment:
    """The assessment of no reports under ``policy``: one object for every such query.

    It does not depend on the time, so most risk queries (buyers never reported) share
    it, and what is derived from it is computed once (``RiskQueries._texts``, the
    answer's JSON in api/routers/risk.py).
    """
    held = _NOTHING_SCORED.get(id(policy))
    if held is not None and held[0] is policy:
        return held[1]
    assessment = score((), dt.datetime.now(dt.UTC), policy)
    if len(_NOTHING_SCORED) >= 16:  # policies change seldom; drop the old ones
        _NOTHING_SCORED.clear()
    _NOTHING_SCORED[id(policy)] = (policy, assessment)
    return assessment


def is_shared(assessment: Assessment) -> bool:
    """Whether ``assessment`` is one that ``nothing_scored`` hands out to every query."""
    return any(held is assessment for _, held in _NOTHING_SCORED.values())


@dataclass(frozen=True, slots=True)
class RiskQuery:
    """One query: whom, what for (art. 18/20), and the member's own reference for it."""

    subject: str
    purpose: Purpose
    reference: str
    locale: str = DEFAULT_LOCALE  # the language of the texts for the buyer


@dataclass(frozen=True, slots=True)
class RiskAnswer:
    """The assessment, explained for the buyer, and the audit event recorded before it."""

    subject: str
    assessment: Assessment
    reasons: tuple[Reason, ...]  # the assessment's, their texts in ``locale``
    explanation: Explanation
    locale: str
    audit_event_id: int
    marker: MarkerRow | None = None  # a protective marker in force (ledger/markers)


class NothingThatCounts:
    """The rows of a subject with nothing that may count: none. A subject never reported
    and one whose reports all ended are both answered from this (ledger/scoring/live.py)."""

    async def read(self, subject: str, now: dt.datetime) -> SubjectRows:
        return NOTHING


NOTHING = SubjectRows(())
NOTHING_THAT_COUNTS = NothingThatCounts()


class RiskQueries:
    """The risk query as the core answers it, on the best read the database allows.

    On PostgreSQL the reports come from ``PostgresReports`` (the hot read on its own
    pool), held per subject until it changes while the live set is on (``HeldReports``);
    elsewhere from a read session. Callers never choose: ``reports()`` does. A subject
    the live set (``live``) knows has nothing that may count is not read at all.
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        hot: PostgresReports | None,
        report_policy: ReportPolicy,
        scoring_policies: PolicySource,
        live: LiveSubjects | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.hot = hot
        self.live = live
        self._report_policy = report_policy
        self.policies = scoring_policies  # cached for a few seconds
        self._shared_texts: dict[
            tuple[int, str], tuple[Assessment, tuple[Reason, ...], Explanation]
        ] = {}

    @asynccontextmanager
    async def reports(self) -> AsyncIterator[ReportSource]:
        """Where this process reads reports from, for one query or one batch of them."""
        if self.hot is not None:
            yield self.hot if self.live is None else HeldReports(self.hot, self.live)
            return
        async with self._sessionmaker() as session:
            yield SessionReports(session)

    async def answer(
        self,
        rec: Recorder,
        principal: ClientPrincipal,
        query: RiskQuery,
        *,
        source: ReportSource | None = None,
    ) -> RiskAnswer:
        """Score ``query``, record it durably, and answer. A subject that is not a
        pseudonym is refused, and the refusal recorded. ``source`` lets a batch share one
        read; without it the query takes its own. A subject with nothing that may count
        is not read at all."""
        now = rec.op.now
        if self.live is not None and not self.live.may_count(query.subject, now.timestamp()):
            self.live.answered_without_read += 1
            return await self._answer(rec, principal, query, NOTHING_THAT_COUNTS)
        if source is None:
            async with self.reports() as own:
                return await self._answer(rec, principal, query, own)
        return await self._answer(rec, principal, query, source)

    async def _answer(
        self, rec: Recorder, principal: ClientPrincipal, query: RiskQuery, source: ReportSource
    ) -> RiskAnswer:
        now = rec.op.now
        try:
            assessment, marker = await assess(
                source,
                principal,
                query.subject,
                now=now,
                report_policy=self._report_policy,
                policy=await self.policies.get(self._sessionmaker),
            )
        except InvalidInput as exc:
            await self.refuse(rec, list(exc.fields), "invalid subject")
            raise
        event_id = await rec.record(
            Tag.RISK_QUERIED,
            subject=query.subject,
            purpose=query.purpose.value,
            reference=query.reference,
            body=shared_body(
                ("score", assessment.score),
                ("band", assessment.band.value),
                ("policy_version", assessment.policy_version),
                *((("protective_marker", marker.kind),) if marker else ()),
            ),
        )
        reasons, explanation = self._texts(assessment, query.locale)
        return RiskAnswer(
            subject=query.subject,
            assessment=assessment,
            reasons=reasons,
            explanation=explanation,
            locale=query.locale,
            audit_event_id=event_id,
            marker=marker,
        )

    def _texts(self, assessment: Assessment, locale: str) -> tuple[tuple[Reason, ...], Explanation]:
        """The reasons and explanation in ``locale``; computed once for the assessment
        most queries share (``nothing_scored``), each time for the others."""
        key = (id(assessment), locale)
        held = self._shared_texts.get(key)
        if held is not None and held[0] is assessment:
            return held[1], held[2]
        texts = explanations.reasons(assessment, locale), explanations.explain(assessment, locale)
        if is_shared(assessment):
            if len(self._shared_texts) >= 64:
                self._shared_texts.clear()
            self._shared_texts[key] = (assessment, *texts)
        return texts

    def changing(self, subjects: Iterable[str]) -> None:
        """A write that may change what counts for ``subjects`` is about to commit in this
        process: from now on this process reads them, and holds nothing read of them,
        until it has read them again after the commit's notification. (Every process
        learns of the change from that notification; this one must not answer from its
        set or from rows it held in between, e.g. to the member that has just filed,
        withdrawn or disputed.) Call it before the request's transaction commits."""
        if self.live is not None:
            self.live.touch(subjects)

    async def refuse(self, rec: Recorder, fields: Sequence[str], why: str) -> int:
        """Record a query refused before it could be scored (its fields, never values)."""
        return await rec.refused(Tag.RISK_QUERIED, reason=why, fields=",".join(fields))

    async def close(self) -> None:
        if self.hot is not None:
            await self.hot.close()
