"""What a compliance officer opens during an inspection: one report with everything
that happened to it, and a buyer's file exactly as the buyer would get it.

Both are reads by an auditor, recorded (``audit:events:listed``, with the subject).
They cost what one report or one buyer has, never what the ledger holds: events are
found through the indexed ``subject`` column, then kept if they name the report.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Permission
from ledger.access.principals import Principal, require
from ledger.audit.models import AuditEventRow
from ledger.audit.reads import Audited, Recorder
from ledger.audit.tags import Tag
from ledger.disputes.models import Dispute, DisputeItem
from ledger.disputes.service import effective
from ledger.errors import NotFound
from ledger.evidence.service import photo_counts
from ledger.reports import views
from ledger.reports.models import Report, ReportAction
from ledger.reports.policy import ReportPolicy
from ledger.reports.views import ReportView
from ledger.subjects.pseudonyms import check_pseudonym
from ledger.subjects.service import Disclosure, subject_file

EVENTS_SHOWN = 500  # a buyer's events, newest first, searched for the report's


@dataclass(frozen=True, slots=True)
class Action:
    kind: str
    reason: str | None
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class DisputeRow:
    dispute_id: uuid.UUID
    opened_by: str
    opened_at: dt.datetime
    deadline: dt.datetime
    resolution: str
    resolved_at: dt.datetime | None
    reason_code: str | None


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    tag: str
    outcome: str
    recorded_at: dt.datetime
    actor_member: str | None


@dataclass(frozen=True, slots=True)
class ReportFile:
    report: ReportView
    member: str  # the reporting member's display name
    evidence_photos: int
    actions: list[Action]
    disputes: list[DisputeRow]
    events: list[EventRow]


async def report_file(
    session: AsyncSession,
    rec: Recorder,
    principal: Principal,
    report_id: uuid.UUID,
    *,
    policy: ReportPolicy,
) -> Audited[ReportFile]:
    """One report: its content and status, the changes made to it, its notice and
    statements, the disputes on it and their outcomes, and its audit events."""
    require(principal, Permission.AUDIT_READ)
    now = rec.op.now
    report = await session.get(Report, report_id)
    if report is None:
        raise NotFound("no such report")
    shown = await views.views(session, [report], now=now, policy=policy, with_statements=True)
    if not shown:
        raise NotFound("no such report")  # expired and erased
    view = shown[0]
    actions = [
        Action(kind=a.kind, reason=a.reason, at=a.at)
        for a in await session.scalars(
            sa.select(ReportAction)
            .where(ReportAction.report_id == report_id)
            .order_by(ReportAction.at)
        )
    ]
    rows = list(
        await session.execute(
            sa.select(DisputeItem, Dispute)
            .join(Dispute, Dispute.id == DisputeItem.dispute_id)
            .where(DisputeItem.report_id == report_id)
            .order_by(Dispute.opened_at)
        )
    )
    events = list(
        await session.execute(
            sa.select(
                AuditEventRow.id,
                AuditEventRow.tag,
                AuditEventRow.outcome,
                AuditEventRow.recorded_at,
                AuditEventRow.actor_member_id,
                AuditEventRow.body,
            )
            .where(AuditEventRow.subject == report.subject)
            .order_by(AuditEventRow.id.desc())
            .limit(EVENTS_SHOWN)
        )
    )
    named = {e for e in events if e.id == report.audit_event_id or _names(e.body, str(report_id))}
    members = await views.member_names(
        session,
        {report.member_id}
        | {d.opened_by for _, d in rows}
        | {e.actor_member_id for e in named if e.actor_member_id is not None},
    )
    found = ReportFile(
        report=view,
        member=members[report.member_id],
        evidence_photos=(await photo_counts(session, [report_id])).get(report_id, 0),
        actions=actions,
        disputes=[
            DisputeRow(
                dispute_id=d.id,
                opened_by=members.get(d.opened_by, str(d.opened_by)),
                opened_at=d.opened_at,
                deadline=d.deadline,
                resolution=effective(item.resolution, d.deadline, now).value,
                resolved_at=item.resolved_at,
                reason_code=item.reason_code,
            )
            for item, d in rows
        ],
        events=sorted(
            (
                EventRow(
                    id=e.id,
                    tag=e.tag,
                    outcome=e.outcome,
                    recorded_at=e.recorded_at,
                    actor_member=members.get(e.actor_member_id) if e.actor_member_id else None,
                )
                for e in named
            ),
            key=lambda e: e.id,
        ),
    )
    event_id = await rec.record(
        Tag.AUDIT_EVENTS_LISTED,
        subject=report.subject,
        body={"view": "report", "report_id": str(report_id)},
    )
    return Audited(found, event_id)


def _names(body: str | None, report_id: str) -> bool:
    if not body:
        return False
    try:
        value = json.loads(body)
    except ValueError:
        return False
    if not isinstance(value, dict):
        return False
    named = value.get("report_ids")
    return value.get("report_id") == report_id or (isinstance(named, list) and report_id in named)


async def buyers_file(
    session: AsyncSession,
    rec: Recorder,
    principal: Principal,
    *,
    subject: str,
    policy: ReportPolicy,
) -> Audited[Disclosure]:
    """The buyer's file exactly as a disclosure gives it to them (the same function
    builds both); looked at by an auditor, and recorded as such, not as a disclosure."""
    require(principal, Permission.AUDIT_READ)
    check_pseudonym(subject)
    found = await subject_file(session, subject=subject, now=rec.op.now, policy=policy)
    event_id = await rec.record(
        Tag.AUDIT_EVENTS_LISTED, subject=subject, body={"view": "subject_file"}
    )
    return Audited(found, event_id)
