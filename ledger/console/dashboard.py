"""What an auditor sees first: is the log intact, which disputes need chasing, is today
like other days, and who may be fishing. One read, recorded once.

- Integrity: the newest signed checkpoint (its age, its witnesses' cosignatures) and
  the latest whole-log verification with its result.
- Disputes: items due within 3 days, and items that went unanswered past their
  deadline in the last 30 days (their reports stopped counting): counts, read through
  the items' resolution index, so they cost what is open or recent, not every dispute.
- Today's risk queries against the usual: the median of the 29 days before today.
- The members with signs of fishing (ledger/audit/activity.py).
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledger.access.permissions import Permission
from ledger.access.principals import Principal, require
from ledger.audit import activity, checkpoints, runs
from ledger.audit.checkpoints import CheckpointView
from ledger.audit.reads import Audited, Recorder
from ledger.audit.tags import Tag
from ledger.disputes.models import Dispute, DisputeItem, Resolution

DUE_SOON = dt.timedelta(days=3)
RECENT = dt.timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Dashboard:
    checkpoint: CheckpointView | None
    checkpoint_age: dt.timedelta | None
    last_run: runs.RunView | None
    due_soon: int
    overdue: int
    queries_today: int
    queries_usual: float
    fishing: list[activity.MemberActivity]


async def dashboard(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    rec: Recorder,
    principal: Principal,
) -> Audited[Dashboard]:
    require(principal, Permission.AUDIT_READ)
    now = rec.op.now
    latest = await checkpoints.latest(session)
    found = await runs.latest(sessionmaker, limit=1)
    open_items = (
        sa.select(sa.func.count())
        .select_from(DisputeItem)
        .join(Dispute, Dispute.id == DisputeItem.dispute_id)
        .where(DisputeItem.resolution == Resolution.OPEN)
    )
    due_soon = await session.scalar(
        open_items.where(Dispute.deadline >= now, Dispute.deadline < now + DUE_SOON)
    )
    late_open = await session.scalar(open_items.where(Dispute.deadline < now))
    unanswered = await session.scalar(
        sa.select(sa.func.count())
        .select_from(DisputeItem)
        .where(
            DisputeItem.resolution == Resolution.UNVERIFIABLE,
            DisputeItem.resolved_at >= now - RECENT,
        )
    )
    members = await activity.activities(session, now=now)
    per_day = [sum(day) for day in zip(*(m.series["queries"] for m in members), strict=True)]
    if not per_day:
        per_day = [0] * activity.DAYS
    board = Dashboard(
        checkpoint=latest,
        checkpoint_age=None if latest is None else now - latest.created_at,
        last_run=found[0] if found else None,
        due_soon=int(due_soon or 0),
        overdue=int(late_open or 0) + int(unanswered or 0),
        queries_today=per_day[-1],
        queries_usual=float(statistics.median(per_day[:-1])) if len(per_day) > 1 else 0.0,
        fishing=[m for m in members if m.signals],
    )
    event_id = await rec.record(Tag.AUDIT_EVENTS_LISTED, body={"view": "dashboard"})
    return Audited(board, event_id)
