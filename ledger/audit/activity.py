"""Members' activity, day by day, from the audit log, and the signs of fishing in it.

An auditor asks: is any member using the ledger for something other than deciding
refunds? The log records every query (with purpose and reference), every report,
withdrawal and dispute, and every batch of pseudonym evaluations (as a count). The
counts are aggregated in the database (per member, per UTC day, per tag) over a window.

Signs of fishing, each with the numbers behind it:

- **a spike**: the member's queries on its busiest recent day are more than
  ``SPIKE_FACTOR`` times its median day over the window (and at least ``MIN_DAY``);
- **evaluations out of line with queries**: more than ``EVALUATIONS_PER_QUERY``
  pseudonym evaluations per risk query (turning identifiers into pseudonyms it never
  asks about: building a dictionary);
- **queries that lead nowhere**: the ledger does not see refund decisions, but a refund
  pipeline makes one query per refund request, with that request's id as its
  reference. Many subjects looked up under the same reference (more than
  ``QUERIES_PER_REFERENCE`` per distinct reference), or most queries for purposes other
  than a refund review, are lookups not tied to a refund.
"""

from __future__ import annotations

import datetime as dt
import statistics
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Permission
from ledger.access.principals import Principal, require
from ledger.audit.models import AuditEventRow
from ledger.audit.reads import Audited, Recorder
from ledger.audit.tags import Outcome, Tag
from ledger.i18n import N_, gettext

SERIES = {
    "queries": Tag.RISK_QUERIED,
    "reports": Tag.REPORT_SUBMITTED,
    "withdrawals": Tag.REPORT_WITHDRAWN,
    "disputes": Tag.DISPUTE_OPENED,
    "evaluations": Tag.PSEUDONYMS_EVALUATED,
}
DAYS = 30
SPIKE_FACTOR = 3.0
MIN_DAY = 20
RECENT_DAYS = 3
EVALUATIONS_PER_QUERY = 5.0
QUERIES_PER_REFERENCE = 1.5
OTHER_PURPOSE_SHARE = 0.5


@dataclass
class MemberActivity:
    member_id: uuid.UUID
    days: list[dt.date]
    series: dict[str, list[int]] = field(default_factory=dict)
    references: int = 0
    refund_review_queries: int = 0
    signals: list[Signal] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(self.series.get(name, []))


def _day(session: AsyncSession) -> sa.ColumnElement[str]:
    column = AuditEventRow.recorded_at
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD")
    return sa.func.strftime("%Y-%m-%d", column)


def _elements(session: AsyncSession) -> sa.ColumnElement[int]:
    """The ``elements`` count in an evaluation event's body (a JSON text)."""
    if session.get_bind().dialect.name == "postgresql":
        value = sa.cast(sa.cast(AuditEventRow.body, JSONB)["elements"].astext, sa.Integer)
        return sa.func.coalesce(value, 0)
    return sa.func.coalesce(sa.func.json_extract(AuditEventRow.body, "$.elements"), 0)


async def member_activity(
    session: AsyncSession, rec: Recorder, principal: Principal, *, days: int = DAYS
) -> Audited[list[MemberActivity]]:
    """Each member's daily counts over the last ``days`` days, with its signals, those
    with signs of fishing first. Recorded."""
    require(principal, Permission.AUDIT_READ)
    ranked = await activities(session, now=rec.op.now, days=days)
    event_id = await rec.record(Tag.AUDIT_EVENTS_LISTED, body={"view": "activity"})
    return Audited(ranked, event_id)


async def activities(
    session: AsyncSession, *, now: dt.datetime, days: int = DAYS
) -> list[MemberActivity]:
    """``member_activity``'s counts, for a caller that records its own read."""
    since_day = (now - dt.timedelta(days=days - 1)).date()
    since = dt.datetime.combine(since_day, dt.time(), tzinfo=dt.UTC)
    calendar = [since_day + dt.timedelta(days=n) for n in range(days)]
    index = {d.isoformat(): n for n, d in enumerate(calendar)}
    e = AuditEventRow
    day = _day(session)
    weight = sa.case(
        (e.tag == Tag.PSEUDONYMS_EVALUATED.value, _elements(session)), else_=sa.literal(1)
    )
    rows = await session.execute(
        sa.select(e.actor_member_id, e.tag, day, sa.func.sum(weight))
        .where(
            e.recorded_at >= since,
            e.actor_member_id.is_not(None),
            e.outcome == Outcome.SUCCESS.value,
            e.tag.in_([t.value for t in SERIES.values()]),
        )
        .group_by(e.actor_member_id, e.tag, day)
    )
    names = {tag.value: name for name, tag in SERIES.items()}
    found: dict[uuid.UUID, MemberActivity] = {}
    for member_id, tag, on, count in rows:
        activity = found.get(member_id)
        if activity is None:
            activity = found[member_id] = MemberActivity(
                member_id=member_id,
                days=calendar,
                series={name: [0] * days for name in SERIES},
            )
        if on in index:
            activity.series[names[tag]][index[on]] += int(count or 0)
    references = await session.execute(
        sa.select(
            e.actor_member_id,
            sa.func.count(sa.distinct(e.reference)),
            sa.func.sum(sa.case((e.purpose == "refund_review", 1), else_=0)),
        )
        .where(
            e.recorded_at >= since,
            e.tag == Tag.RISK_QUERIED.value,
            e.outcome == Outcome.SUCCESS.value,
            e.actor_member_id.is_not(None),
        )
        .group_by(e.actor_member_id)
    )
    for member_id, distinct, refund_reviews in references:
        if member_id in found:
            found[member_id].references = int(distinct or 0)
            found[member_id].refund_review_queries = int(refund_reviews or 0)
    for activity in found.values():
        activity.signals = signals(activity)
    return sorted(found.values(), key=lambda a: (-len(a.signals), -a.total("queries")))


@dataclass(frozen=True, slots=True)
class Signal:
    """A sign of fishing: an English message (translated where it is shown) and the
    numbers it rests on."""

    message: str
    values: dict[str, int | float | str]

    def text(self, locale: str = "en") -> str:
        return gettext(locale, self.message) % self.values


def signals(a: MemberActivity) -> list[Signal]:
    """The signs of fishing in one member's activity, with their numbers."""
    found: list[Signal] = []
    queries = a.series.get("queries", [])
    if queries:
        earlier = queries[:-RECENT_DAYS] or [0]
        usual = statistics.median(earlier)
        peak = max(queries[-RECENT_DAYS:])
        if peak >= MIN_DAY and peak > SPIKE_FACTOR * max(usual, 1):
            found.append(
                Signal(
                    N_("query spike: %(peak)d queries in a recent day against a usual "
                       "%(usual)s a day"),
                    {"peak": peak, "usual": f"{usual:g}"},
                )
            )  # fmt: skip
    total_queries = a.total("queries")
    evaluations = a.total("evaluations")
    if evaluations >= MIN_DAY and evaluations > EVALUATIONS_PER_QUERY * max(total_queries, 1):
        found.append(
            Signal(
                N_("evaluations out of line: %(evaluations)d pseudonyms made for "
                   "%(queries)d risk queries"),
                {"evaluations": evaluations, "queries": total_queries},
            )
        )  # fmt: skip
    if total_queries >= MIN_DAY and a.references:
        per_reference = total_queries / a.references
        if per_reference > QUERIES_PER_REFERENCE:
            found.append(
                Signal(
                    N_("queries not tied to a refund: %(queries)d queries under "
                       "%(references)d references (%(per)s subjects per refund request)"),
                    {"queries": total_queries, "references": a.references,
                     "per": f"{per_reference:.1f}"},
                )
            )  # fmt: skip
    if total_queries >= MIN_DAY and a.refund_review_queries < (
        (1 - OTHER_PURPOSE_SHARE) * total_queries
    ):
        found.append(
            Signal(
                N_("queries for other purposes: %(other)d of %(queries)d were not refund "
                   "reviews"),
                {"other": total_queries - a.refund_review_queries, "queries": total_queries},
            )
        )  # fmt: skip
    return found
