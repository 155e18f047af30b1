"""The pre-refund risk query: read a subject's reports, score them, never name members.

The read is audited by the caller (through the group-commit writer) before the answer
is sent. A subject with no reports and one whose reports all expired or were withdrawn
get the same answer, built the same way.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal, require
from ledger.disputes.models import Dispute, DisputeItem, Resolution
from ledger.reports.models import Report
from ledger.reports.policy import ReportPolicy, State, status
from ledger.scoring.score import Assessment, ScoredReport, ScoringPolicy, score
from ledger.subjects.pseudonyms import check_pseudonym


class Purpose(StrEnum):
    """What a query may be for (art. 18/20, PIPL art. 6): used for that only."""

    REFUND_REVIEW = "refund_review"
    DISPUTE_REVIEW = "dispute_review"
    ACCOUNT_REVIEW = "account_review"


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

_DEADLINES = (
    sa.select(DisputeItem.report_id, Dispute.deadline)
    .join(Dispute, Dispute.id == DisputeItem.dispute_id)
    .where(Dispute.subject == sa.bindparam("subject"), DisputeItem.resolution == Resolution.OPEN)
)


async def assess(
    session: AsyncSession,
    principal: ClientPrincipal,
    subject: str,
    *,
    now: dt.datetime,
    report_policy: ReportPolicy,
    policy: ScoringPolicy,
) -> Assessment:
    """The subject's assessment at ``now`` (Core reads: no ORM objects are built)."""
    require(principal, Permission.RISK_READ)
    check_pseudonym(subject)
    rows = list(await session.execute(_REPORTS, {"subject": subject, "now": now}))
    deadlines: dict[uuid.UUID, list[dt.datetime]] = {}
    # Always both reads, so a subject with no reports and one whose reports no longer
    # count take the same path: the work done does not tell them apart.
    for report_id, deadline in await session.execute(_DEADLINES, {"subject": subject}):
        deadlines.setdefault(report_id, []).append(deadline)
    scored = [
        ScoredReport(
            member_id=row.member_id,
            category=row.category,
            status=status(
                state=row.state,
                filed_at=row.filed_at,
                notified_at=row.notified_at,
                expires_at=row.expires_at,
                dispute_deadlines=deadlines.get(row.id, []),
                now=now,
                policy=report_policy,
            ),
            confirmed_at=row.confirmed_at,
        )
        for row in rows
    ]
    return score(scored, now, policy)
