"""Time-driven transitions of reports: suspension without notice, erasure at expiry
(art. 16). Run by the maintenance job.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit.log import record
from ledger.audit.tags import Tag
from ledger.context import Operation
from ledger.disputes.models import Dispute, DisputeItem
from ledger.evidence.models import EvidencePhoto
from ledger.reports.models import Report, ReportAction, ReportStatement
from ledger.reports.policy import ReportPolicy, State
from ledger.webhooks import outbox


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
        data = {
            "report_id": str(report.id),
            "case_ref": report.case_ref,
            "reason": "no_notice",
            "filed_at": outbox.iso(report.filed_at),
        }
        await outbox.emit(
            session, report.member_id, outbox.EventType.REPORT_SUSPENDED, data, now=op.now
        )
    await session.flush()
    return len(due)


async def purge_expired(
    session: AsyncSession, op: Operation, *, policy: ReportPolicy, limit: int = 10_000
) -> int:
    """Erase the payload of reports past ``expires_at`` (art. 16), keeping a tombstone
    (ids, dates, member), and delete their statements and photo fingerprints. One audit
    event per run; the members that recently asked about a buyer whose report still
    counted until it expired are told."""
    rows = list(
        await session.execute(
            sa.select(Report.id, Report.subject, Report.state)
            .where(Report.expires_at <= op.now, Report.state != State.PURGED)
            .order_by(Report.expires_at)
            .limit(limit)
        )
    )
    if not rows:
        return 0
    due = [row.id for row in rows]
    await outbox.assessment_changed(
        session,
        op,
        [row.subject for row in rows if row.state is State.ACTIVE and row.subject],
        outbox.Cause.EXPIRED,
        policy=policy,
    )
    await session.execute(sa.delete(ReportStatement).where(ReportStatement.report_id.in_(due)))
    await session.execute(sa.delete(EvidencePhoto).where(EvidencePhoto.report_id.in_(due)))
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
