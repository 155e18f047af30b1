"""A report after filing: the subject's notice (art. 15) and withdrawal by its member.

Nothing is deleted: each change is a new row beside the report, audited in the caller's
transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.principals import ClientPrincipal
from ledger.audit.log import record
from ledger.audit.tags import Tag
from ledger.context import Operation
from ledger.errors import (
    Conflict,
    InvalidInput,
)
from ledger.reports.models import ReportAction
from ledger.reports.policy import COUNTING, ReportPolicy, State, Status
from ledger.reports.views import ReportView, own_report, view_now
from ledger.webhooks import outbox


class WithdrawalReason(StrEnum):
    CONFIRMED_IN_ERROR = "confirmed_in_error"
    DECISION_REVERSED = "decision_reversed"
    DISPUTE_ACCEPTED = "dispute_accepted"
    SUBJECT_REQUEST = "subject_request"
    OTHER = "other"


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
    report = await own_report(session, principal, report_id)
    current = await view_now(session, report, op.now, policy)
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
    return await view_now(session, report, op.now, policy)


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
    report = await own_report(session, principal, report_id)
    current = await view_now(session, report, op.now, policy)
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
    if current.status in COUNTING and report.subject is not None:
        await outbox.assessment_changed(
            session, op, [report.subject], outbox.Cause.WITHDRAWN, policy=policy
        )
    return await view_now(session, report, op.now, policy)
