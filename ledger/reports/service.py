"""Filing, reading, noticing and withdrawing reports; retention.

A member sees and changes only its own reports: every function takes the principal,
and another member's report is "not found". Expired reports are returned to no one.
Every change records its audit event in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger import pagination
from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal, require
from ledger.audit.log import record, record_many
from ledger.audit.tags import Tag
from ledger.context import Operation
from ledger.db import insert_or_ignore
from ledger.disputes.models import Dispute, DisputeItem, Resolution
from ledger.errors import (
    Conflict,
    Contention,
    DuplicateReport,
    InvalidInput,
    LedgerError,
    NotFound,
)
from ledger.members.models import Member
from ledger.reports.models import Report, ReportAction, ReportStatement
from ledger.reports.policy import Basis, Category, ReportPolicy, State, Status, status
from ledger.reports.queries import status_is
from ledger.subjects.pseudonyms import check_pseudonym
from ledger.types import uuid7

CASE_REF = re.compile(r"^[A-Za-z0-9._:/-]{1,64}$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_AMOUNT_MINOR = 10**15
MAX_EVIDENCE = 20
REPORTS_TABLE: sa.Table = Report.__table__  # type: ignore[assignment]


class WithdrawalReason(StrEnum):
    CONFIRMED_IN_ERROR = "confirmed_in_error"
    DECISION_REVERSED = "decision_reversed"
    DISPUTE_ACCEPTED = "dispute_accepted"
    SUBJECT_REQUEST = "subject_request"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ReportInput:
    """What a member files. No free text: every field is a code, a number, a time or a
    digest."""

    case_ref: str
    subject: str
    category: Category
    basis: Basis
    amount_minor: int
    currency: str
    occurred_at: dt.datetime
    confirmed_at: dt.datetime
    evidence_sha256: tuple[str, ...]
    subject_notified_at: dt.datetime | None = None

    def check(self, now: dt.datetime) -> None:
        """Raise ``InvalidInput`` naming the field to fix."""
        if not CASE_REF.match(self.case_ref):
            raise InvalidInput(
                "case_ref is 1-64 characters of letters, digits and . _ : / -",
                fields=("case_ref",),
            )
        check_pseudonym(self.subject)
        if not 0 < self.amount_minor <= MAX_AMOUNT_MINOR:
            raise InvalidInput(
                "amount_minor is a positive integer (minor units)", fields=("amount_minor",)
            )
        if not CURRENCY.match(self.currency):
            raise InvalidInput("currency is an ISO 4217 code such as CNY", fields=("currency",))
        if not 1 <= len(self.evidence_sha256) <= MAX_EVIDENCE or not all(
            SHA256_HEX.match(d) for d in self.evidence_sha256
        ):
            raise InvalidInput(
                f"evidence_sha256 is 1-{MAX_EVIDENCE} SHA-256 digests, 64 lowercase hex each",
                fields=("evidence_sha256",),
            )
        times = {"occurred_at": self.occurred_at, "confirmed_at": self.confirmed_at}
        if self.subject_notified_at is not None:
            times["subject_notified_at"] = self.subject_notified_at
        for name, value in times.items():
            if value.tzinfo is None:
                raise InvalidInput(f"{name} needs a UTC offset", fields=(name,))
            if value > now:
                raise InvalidInput(f"{name} is in the future", fields=(name,))
        if self.confirmed_at < self.occurred_at:
            raise InvalidInput("confirmed_at is before occurred_at", fields=("confirmed_at",))
        notified = self.subject_notified_at
        if notified is not None and notified < self.occurred_at:
            raise InvalidInput(
                "subject_notified_at is before occurred_at", fields=("subject_notified_at",)
            )

    def fingerprint(self) -> str:
        """Identifies the content, so that a re-sent report is told from a different one."""
        content = {
            "case_ref": self.case_ref,
            "subject": self.subject,
            "category": self.category.value,
            "basis": self.basis.value,
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "occurred_at": self.occurred_at.astimezone(dt.UTC).isoformat(),
            "confirmed_at": self.confirmed_at.astimezone(dt.UTC).isoformat(),
            "evidence_sha256": sorted(self.evidence_sha256),
        }
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StatementView:
    text: str
    added_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ReportView:
    id: uuid.UUID
    member_id: uuid.UUID
    case_ref: str
    subject: str
    category: Category
    basis: Basis
    amount_minor: int
    currency: str
    evidence_sha256: tuple[str, ...]
    occurred_at: dt.datetime
    confirmed_at: dt.datetime
    subject_notified_at: dt.datetime | None
    filed_at: dt.datetime
    expires_at: dt.datetime
    status: Status
    open_disputes: int
    audit_event_id: int | None
    statements: list[StatementView] = field(default_factory=list)


class Filed(StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"  # the same report was filed before: nothing new was written


@dataclass(frozen=True, slots=True)
class FileResult:
    outcome: Filed
    report: ReportView


async def _open_deadlines(
    session: AsyncSession, report_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[dt.datetime]]:
    if not report_ids:
        return {}
    rows = await session.execute(
        sa.select(DisputeItem.report_id, Dispute.deadline)
        .join(Dispute, Dispute.id == DisputeItem.dispute_id)
        .where(DisputeItem.report_id.in_(report_ids), DisputeItem.resolution == Resolution.OPEN)
    )
    deadlines: dict[uuid.UUID, list[dt.datetime]] = {}
    for report_id, deadline in rows:
        deadlines.setdefault(report_id, []).append(deadline)
    return deadlines


def report_status(
    report: Report, deadlines: list[dt.datetime], now: dt.datetime, policy: ReportPolicy
) -> Status:
    return status(
        state=report.state,
        filed_at=report.filed_at,
        notified_at=report.notified_at,
        expires_at=report.expires_at,
        dispute_deadlines=deadlines,
        now=now,
        policy=policy,
    )


async def views(
    session: AsyncSession,
    reports: Sequence[Report],
    *,
    now: dt.datetime,
    policy: ReportPolicy,
    with_statements: bool = False,
) -> list[ReportView]:
    """Views of reports at ``now``; expired ones are left out."""
    ids = [r.id for r in reports]
    deadlines = await _open_deadlines(session, ids)
    statements: dict[uuid.UUID, list[StatementView]] = {}
    if with_statements and ids:
        rows = await session.execute(
            sa.select(ReportStatement.report_id, ReportStatement.text, ReportStatement.added_at)
            .where(ReportStatement.report_id.in_(ids))
            .order_by(ReportStatement.added_at)
        )
        for report_id, text, added_at in rows:
            statements.setdefault(report_id, []).append(StatementView(text, added_at))
    out = []
    for r in reports:
        view = _view_of(r, deadlines.get(r.id, []), statements.get(r.id, []), now, policy)
        if view is not None:
            out.append(view)
    return out


def _view_of(
    r: Report,
    deadlines: list[dt.datetime],
    statements: list[StatementView],
    now: dt.datetime,
    policy: ReportPolicy,
) -> ReportView | None:
    """The report as its member sees it at ``now``; None once it has expired."""
    current = report_status(r, deadlines, now, policy)
    if current is Status.EXPIRED:
        return None
    assert r.subject is not None
    assert r.case_ref is not None
    assert r.amount_minor is not None
    assert r.currency is not None
    assert r.evidence is not None
    return ReportView(
        id=r.id,
        member_id=r.member_id,
        case_ref=r.case_ref,
        subject=r.subject,
        category=r.category,
        basis=r.basis,
        amount_minor=r.amount_minor,
        currency=r.currency,
        evidence_sha256=tuple(json.loads(r.evidence)),
        occurred_at=r.occurred_at,
        confirmed_at=r.confirmed_at,
        subject_notified_at=r.notified_at,
        filed_at=r.filed_at,
        expires_at=r.expires_at,
        status=current,
        open_disputes=len(deadlines),
        audit_event_id=r.audit_event_id,
        statements=statements,
    )


async def _view(
    session: AsyncSession, report: Report, now: dt.datetime, policy: ReportPolicy
) -> ReportView:
    found = await views(session, [report], now=now, policy=policy, with_statements=True)
    if not found:
        raise NotFound("no such report among yours (expired reports are returned to no one)")
    return found[0]


def _member(principal: ClientPrincipal) -> uuid.UUID:
    require(principal, Permission.REPORTS_WRITE)
    return principal.member_id


async def file_report(
    session: AsyncSession,
    op: Operation,
    principal: ClientPrincipal,
    data: ReportInput,
    *,
    policy: ReportPolicy,
) -> FileResult:
    """File one report. Re-sending the same report answers with the one filed before;
    a different report under the same case_ref is refused with ``DuplicateReport``."""
    (result,) = await file_reports(session, op, principal, [data], policy=policy)
    if isinstance(result, LedgerError):
        raise result
    return result


async def file_reports(
    session: AsyncSession,
    op: Operation,
    principal: ClientPrincipal,
    items: Sequence[ReportInput],
    *,
    policy: ReportPolicy,
) -> list[FileResult | LedgerError]:
    """File many reports in a few statements; one result per item, in order.

    An item that fails a check comes back as its error and writes nothing; the others
    are filed. Concurrent filings of the same case_ref are safe: the insert ignores a
    conflict, and the item is then answered as the duplicate it is.
    """
    member_id = _member(principal)
    results: list[FileResult | LedgerError | None] = [None] * len(items)
    fresh: dict[str, tuple[int, ReportInput, uuid.UUID, dt.datetime]] = {}
    for index, data in enumerate(items):
        try:
            data.check(op.now)
            expires_at = policy.expires_at(data.category, data.occurred_at)
            if expires_at <= op.now:
                raise InvalidInput(
                    "this case is older than the retention period and can no longer be reported",
                    fields=("occurred_at",),
                )
        except LedgerError as exc:
            results[index] = exc
            continue
        earlier = fresh.get(data.case_ref)
        if earlier is not None:
            results[index] = DuplicateReport(
                "this batch repeats a case_ref: send each case once", report_id=str(earlier[2])
            )
            continue
        fresh[data.case_ref] = (index, data, uuid7(), expires_at)

    candidates = {
        report_id: Report(
            id=report_id,
            member_id=member_id,
            case_ref=data.case_ref,
            subject=data.subject,
            category=data.category,
            basis=data.basis,
            amount_minor=data.amount_minor,
            currency=data.currency,
            evidence=json.dumps(list(data.evidence_sha256)),
            fingerprint=data.fingerprint(),
            occurred_at=data.occurred_at,
            confirmed_at=data.confirmed_at,
            notified_at=data.subject_notified_at,
            filed_at=op.now,
            expires_at=expires_at,
            state=State.ACTIVE,
            state_changed_at=op.now,
        )
        for _, data, report_id, expires_at in fresh.values()
    }
    # Inserted in (member, case_ref) order: two batches that share case_refs then wait
    # on each other's unique-index entries in the same order, and cannot deadlock.
    rows = [
        {c.key: getattr(report, c.key) for c in REPORTS_TABLE.columns if c.key != "audit_event_id"}
        for report in sorted(candidates.values(), key=lambda r: r.case_ref or "")
    ]
    inserted: set[uuid.UUID] = set()
    if rows:
        statement = insert_or_ignore(session, Report, "member_id", "case_ref").returning(Report.id)
        inserted = set(await session.scalars(statement, rows))
    # Not inserted: filed before (or a moment ago, concurrently): answered as such.
    known = [case_ref for case_ref, (_, _, rid, _) in fresh.items() if rid not in inserted]
    found = await _existing(session, member_id, known)
    if len(found) != len(known):
        # The row that stopped the insert is not visible to this transaction (a
        # snapshot older than its commit): the request is retried as a whole.
        raise Contention("a concurrent filing of the same case_ref is still settling")
    for case_ref, report in found.items():
        index, data, _, _ = fresh.pop(case_ref)
        results[index] = await _duplicate(session, report, data, op.now, policy)

    filed = list(fresh.values())
    events = [
        op.event(
            Tag.REPORT_SUBMITTED,
            subject=data.subject,
            reference=data.case_ref,
            body={
                "report_id": str(report_id),
                "category": data.category.value,
                "basis": data.basis.value,
            },
        )
        for _, data, report_id, _ in filed
    ]
    event_ids = await record_many(session, events, now=op.now)
    if filed:
        await session.execute(
            # The Core table: an executemany UPDATE, not the ORM's bulk-by-primary-key.
            sa.update(REPORTS_TABLE)
            .where(REPORTS_TABLE.c.id == sa.bindparam("report_id"))
            .values(audit_event_id=sa.bindparam("event_id")),
            [
                {"report_id": report_id, "event_id": event_id}
                for (_, _, report_id, _), event_id in zip(filed, event_ids, strict=True)
            ],
        )
    for (index, _, report_id, _), event_id in zip(filed, event_ids, strict=True):
        # A new report has no disputes or statements: its view needs no read.
        report = candidates[report_id]
        report.audit_event_id = event_id
        view = _view_of(report, [], [], op.now, policy)
        assert view is not None
        results[index] = FileResult(Filed.CREATED, view)
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


async def _existing(
    session: AsyncSession, member_id: uuid.UUID, case_refs: list[str]
) -> dict[str, Report]:
    found: dict[str, Report] = {}
    for start in range(0, len(case_refs), 500):
        chunk = case_refs[start : start + 500]
        rows = await session.scalars(
            sa.select(Report).where(Report.member_id == member_id, Report.case_ref.in_(chunk))
        )
        found.update({r.case_ref: r for r in rows if r.case_ref is not None})
    return found


async def _duplicate(
    session: AsyncSession,
    existing: Report,
    data: ReportInput,
    now: dt.datetime,
    policy: ReportPolicy,
) -> FileResult | DuplicateReport:
    """The answer to an item whose case_ref is taken: the same report (filed before, and
    answered again), or a different one, refused for this item alone."""
    if existing.fingerprint != data.fingerprint():
        return DuplicateReport(
            "another report already uses this case_ref; choose a new case_ref, or withdraw "
            "the existing report first",
            report_id=str(existing.id),
        )
    return FileResult(Filed.DUPLICATE, await _view(session, existing, now, policy))


async def get_report(
    session: AsyncSession,
    principal: ClientPrincipal,
    report_id: uuid.UUID,
    *,
    now: dt.datetime,
    policy: ReportPolicy,
) -> ReportView:
    return await _view(session, await _own(session, principal, report_id), now, policy)


async def _own(session: AsyncSession, principal: ClientPrincipal, report_id: uuid.UUID) -> Report:
    report = await session.get(Report, report_id)
    if report is None or report.member_id != _member(principal):
        raise NotFound("no such report among yours (expired reports are returned to no one)")
    return report


@dataclass(frozen=True, slots=True)
class ReportFilter:
    status: Status | None = None
    category: Category | None = None
    subject: str | None = None
    filed_since: dt.datetime | None = None
    filed_until: dt.datetime | None = None


async def list_reports(
    session: AsyncSession,
    principal: ClientPrincipal,
    filt: ReportFilter,
    *,
    now: dt.datetime,
    policy: ReportPolicy,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[ReportView], str | None]:
    """The caller's reports, oldest first: a page and the cursor of the next one.

    Every filter, status included, is a condition in one statement on the member's
    ``(member_id, state, id)`` index: a page costs what it returns, however many reports
    the member has (a test counts the statements)."""
    query = sa.select(Report).where(
        Report.member_id == _member(principal),
        Report.expires_at > now,
        Report.state != State.PURGED,
    )
    if filt.status is not None:
        query = query.where(status_is(filt.status, now=now, policy=policy))
    if filt.category is not None:
        query = query.where(Report.category == filt.category)
    if filt.subject is not None:
        query = query.where(Report.subject == check_pseudonym(filt.subject))
    if filt.filed_since is not None:
        query = query.where(Report.filed_at >= filt.filed_since)
    if filt.filed_until is not None:
        query = query.where(Report.filed_at < filt.filed_until)
    if cursor is not None:
        (after,) = pagination.decode(cursor, "reports", [uuid.UUID])
        query = query.where(Report.id > after)
    rows = list(await session.scalars(query.order_by(Report.id).limit(limit + 1)))
    page, next_cursor = pagination.cut(rows, limit, "reports", lambda r: (r.id,))
    return await views(session, page, now=now, policy=policy), next_cursor


async def record_notice(
    session: AsyncSession,
    op: Operation,
    principal: ClientPrincipal,
    report_id: uuid.UUID,
    notified_at: dt.datetime,
    *,
    policy: ReportPolicy,
) -> ReportView:
    """Record that the subject was notified (art. 15): from then on the report counts."""
    report = await _own(session, principal, report_id)
    current = await _view(session, report, op.now, policy)
    if report.notified_at is not None:
        raise Conflict(
            "the subject's notice was already recorded", current_state=current.status.value
        )
    if notified_at.tzinfo is None or notified_at > op.now or notified_at < report.occurred_at:
        raise InvalidInput(
            "notified_at is a past time, with a UTC offset, not before occurred_at",
            fields=("notified_at",),
        )
    if current.status in {Status.WITHDRAWN, Status.SUPPRESSED}:
        raise Conflict(
            "the report no longer counts; notice changes nothing",
            current_state=current.status.value,
        )
    report.notified_at = notified_at
    session.add(
        ReportAction(report_id=report.id, kind="notice", member_id=report.member_id, at=op.now)
    )
    await record(
        session,
        op.event(
            Tag.REPORT_NOTICE_RECORDED, subject=report.subject, body={"report_id": str(report.id)}
        ),
        now=op.now,
    )
    await session.flush()
    return await _view(session, report, op.now, policy)


async def withdraw(
    session: AsyncSession,
    op: Operation,
    principal: ClientPrincipal,
    report_id: uuid.UUID,
    reason: WithdrawalReason,
    *,
    policy: ReportPolicy,
    dispute_id: uuid.UUID | None = None,
) -> ReportView:
    """Withdraw one of the caller's reports. Nothing is deleted: the withdrawal is a new
    row pointing at the report, and the report stops counting."""
    report = await _own(session, principal, report_id)
    current = await _view(session, report, op.now, policy)
    if current.status in {Status.WITHDRAWN, Status.SUPPRESSED}:
        raise Conflict(
            f"the report is already {current.status.value}", current_state=current.status.value
        )
    report.state = State.WITHDRAWN
    report.state_changed_at = op.now
    session.add(
        ReportAction(
            report_id=report.id,
            kind="withdrawal",
            reason=reason.value,
            dispute_id=dispute_id,
            member_id=report.member_id,
            at=op.now,
        )
    )
    await record(
        session,
        op.event(
            Tag.REPORT_WITHDRAWN,
            subject=report.subject,
            body={"report_id": str(report.id), "reason": reason.value},
        ),
        now=op.now,
    )
    await session.flush()
    return await _view(session, report, op.now, policy)


async def suspend_unnoticed(session: AsyncSession, op: Operation, *, policy: ReportPolicy) -> int:
    """Record the suspension of reports still without notice after the grace period.

    The status is already derived from time; this makes the transition explicit and
    audited, once per report."""
    already = sa.exists().where(
        ReportAction.report_id == Report.id, ReportAction.kind == "suspension"
    )
    due = list(
        await session.scalars(
            sa.select(Report).where(
                Report.notified_at.is_(None),
                Report.state == State.ACTIVE,
                Report.filed_at <= op.now - policy.notice_grace,
                Report.expires_at > op.now,
                ~already,
            )
        )
    )
    for report in due:
        session.add(
            ReportAction(report_id=report.id, kind="suspension", reason="no_notice", at=op.now)
        )
        await record(
            session,
            op.event(
                Tag.REPORT_SUSPENDED,
                subject=report.subject,
                body={"report_id": str(report.id), "reason": "no_notice"},
            ),
            now=op.now,
        )
    await session.flush()
    return len(due)


async def purge_expired(session: AsyncSession, op: Operation, *, limit: int = 10_000) -> int:
    """Erase the payload of reports past ``expires_at`` (art. 16), keeping a tombstone
    (ids, dates, member), and delete their statements. One audit event per run."""
    due = list(
        await session.scalars(
            sa.select(Report.id)
            .where(Report.expires_at <= op.now, Report.state != State.PURGED)
            .order_by(Report.expires_at)
            .limit(limit)
        )
    )
    if not due:
        return 0
    await session.execute(sa.delete(ReportStatement).where(ReportStatement.report_id.in_(due)))
    await session.execute(
        sa.update(Report)
        .where(Report.id.in_(due))
        .values(
            subject=None,
            case_ref=None,
            amount_minor=None,
            currency=None,
            evidence=None,
            fingerprint=None,
            state=State.PURGED,
            state_changed_at=op.now,
        )
    )
    # A dispute keeps its subject only while one of its reports does.
    live = sa.exists().where(
        DisputeItem.dispute_id == Dispute.id,
        DisputeItem.report_id == Report.id,
        Report.state != State.PURGED,
    )
    await session.execute(
        sa.update(Dispute).where(Dispute.subject.is_not(None), ~live).values(subject=None)
    )
    await record(
        session,
        op.event(
            Tag.REPORTS_PURGED, body={"count": len(due), "report_ids": [str(i) for i in due[:100]]}
        ),
        now=op.now,
    )
    return len(due)


async def member_names(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(sa.select(Member.id, Member.name).where(Member.id.in_(ids)))
    return dict(rows.all())
