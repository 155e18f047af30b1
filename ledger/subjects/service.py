"""What a buyer may do through a member platform: add a statement to a report on them
(art. 16) and see their own file (art. 17): every report held, every dispute and the
member each part of it went to, every protective marker, and who looked."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal, require
from ledger.audit.log import record
from ledger.audit.models import AuditEventRow
from ledger.audit.reads import Audited, Recorder
from ledger.audit.tags import Tag
from ledger.context import Operation
from ledger.disputes.models import Dispute, DisputeItem, Resolution
from ledger.disputes.service import effective
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.evidence.service import photo_counts
from ledger.i18n import N_
from ledger.markers import service as markers
from ledger.markers.service import MarkerView
from ledger.reports import views as reports
from ledger.reports.models import Report, ReportStatement
from ledger.reports.policy import ReportPolicy, Status
from ledger.reports.views import ReportView
from ledger.subjects.pseudonyms import check_pseudonym

MAX_STATEMENT = 200
INQUIRY_WINDOW = dt.timedelta(days=2 * 365)
INQUIRY_TAGS = (Tag.RISK_QUERIED.value, Tag.SUBJECT_DISCLOSED.value)


@dataclass(frozen=True, slots=True)
class Inquiry:
    member: str
    at: dt.datetime
    purpose: str | None
    tag: str


@dataclass(frozen=True, slots=True)
class DisclosedReport:
    report: ReportView
    member: str
    evidence_photos: int = 0  # photo fingerprints kept with it (a count, never the hashes)


DISCLOSURE_PURPOSE = "subject_request"
# For the buyer, in their language (ledger/i18n); the platform opens the dispute for
# them through POST /v1/disputes.
HOW_TO_DISPUTE = N_(
    "To object to a report, ask the platform you use to open a dispute about it. The "
    "platform that filed the report must answer within 20 days; a report left unanswered "
    "stops counting. You may also add a statement of up to 200 characters to any report; "
    "it is kept and shown with the report."
)


@dataclass(frozen=True, slots=True)
class DisclosedMarker:
    marker: MarkerView
    placed_by: str
    removed_by: str | None


@dataclass(frozen=True, slots=True)
class DisclosedDisputeItem:
    report_id: uuid.UUID
    member: str  # the reporting member it was routed to
    resolution: Resolution
    deadline: dt.datetime
    resolved_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class DisclosedDispute:
    id: uuid.UUID
    opened_by: str
    opened_at: dt.datetime
    items: list[DisclosedDisputeItem]


@dataclass(frozen=True, slots=True)
class Disclosure:
    subject: str
    reports: list[DisclosedReport]
    inquiries: list[Inquiry]
    how_to_dispute: str = HOW_TO_DISPUTE
    disputes: list[DisclosedDispute] = field(default_factory=list)
    markers: list[DisclosedMarker] = field(default_factory=list)


async def add_statement(
    session: AsyncSession,
    op: Operation,
    principal: ClientPrincipal,
    *,
    subject: str,
    report_id: uuid.UUID,
    text: str,
    policy: ReportPolicy,
) -> ReportView:
    """Attach the subject's explanation to a report on them; it is returned with it."""
    require(principal, Permission.DISPUTES_WRITE)
    check_pseudonym(subject)
    text = text.strip()
    if not 1 <= len(text) <= MAX_STATEMENT or any(ord(c) < 0x20 for c in text):
        raise InvalidInput(
            f"a statement is 1-{MAX_STATEMENT} characters of plain text on one line",
            fields=("text",),
        )
    report = await session.get(Report, report_id)
    if report is None or report.subject != subject:
        raise NotFound("no report with that id about this subject")
    current = await reports.views(session, [report], now=op.now, policy=policy)
    if not current:  # expired: it exists for no one
        raise NotFound("no report with that id about this subject")
    view = current[0]
    if view.status is Status.WITHDRAWN:
        raise Conflict("the report was withdrawn", current_state=view.status.value)
    session.add(
        ReportStatement(
            report_id=report.id, text=text, via_member_id=principal.member_id, added_at=op.now
        )
    )
    await record(
        session,
        op.event(Tag.STATEMENT_ADDED, subject=subject, body={"report_id": str(report.id)}),
        now=op.now,
    )
    await session.flush()
    found = await reports.views(session, [report], now=op.now, policy=policy, with_statements=True)
    return found[0]


async def disclose(
    session: AsyncSession,
    rec: Recorder,
    principal: ClientPrincipal,
    *,
    subject: str,
    reference: str,
    policy: ReportPolicy,
) -> Audited[Disclosure]:
    """The subject's file: every report not yet expired, whatever its status, with its
    reporting member, and the members that looked the subject up in the last two years.
    Recorded (purpose ``subject_request``, the member's reference) before it is returned."""
    require(principal, Permission.SUBJECTS_DISCLOSE)
    check_pseudonym(subject)
    disclosure = await subject_file(session, subject=subject, now=rec.op.now, policy=policy)
    event_id = await rec.record(
        Tag.SUBJECT_DISCLOSED,
        subject=subject,
        purpose=DISCLOSURE_PURPOSE,
        reference=reference,
        body={"reports": len(disclosure.reports)},
    )
    return Audited(disclosure, event_id)


async def subject_file(
    session: AsyncSession, *, subject: str, now: dt.datetime, policy: ReportPolicy
) -> Disclosure:
    """The file itself, unrecorded: the caller records its own read (a disclosure, or an
    auditor looking at what the buyer would get)."""
    found = list(
        await session.scalars(
            sa.select(Report).where(Report.subject == subject).order_by(Report.filed_at)
        )
    )
    held = await reports.views(session, found, now=now, policy=policy, with_statements=True)
    rows = list(
        await session.execute(
            sa.select(
                AuditEventRow.actor_member_id,
                AuditEventRow.recorded_at,
                AuditEventRow.purpose,
                AuditEventRow.tag,
            )
            .where(
                AuditEventRow.subject == subject,
                AuditEventRow.tag.in_(INQUIRY_TAGS),
                AuditEventRow.recorded_at >= now - INQUIRY_WINDOW,
                AuditEventRow.actor_member_id.is_not(None),
            )
            .order_by(AuditEventRow.id.desc())
            .limit(1000)
        )
    )
    photos = await photo_counts(session, [v.id for v in held])
    disputes = list(
        await session.execute(
            sa.select(Dispute, DisputeItem)
            .join(DisputeItem, DisputeItem.dispute_id == Dispute.id)
            .where(Dispute.subject == subject)
            .order_by(Dispute.opened_at, DisputeItem.report_id)
            .limit(1000)
        )
    )
    marks = await markers.of_subject(session, subject)
    names = await reports.member_names(
        session,
        {v.member_id for v in held}
        | {r.actor_member_id for r in rows}
        | {d.opened_by for d, _ in disputes}
        | {i.reporting_member_id for _, i in disputes}
        | {m.placed_by for m in marks}
        | {m.removed_by for m in marks if m.removed_by},
    )
    opened: dict[uuid.UUID, DisclosedDispute] = {}
    for d, item in disputes:
        shown = opened.setdefault(d.id, DisclosedDispute(d.id, names[d.opened_by], d.opened_at, []))
        shown.items.append(
            DisclosedDisputeItem(
                report_id=item.report_id,
                member=names[item.reporting_member_id],
                resolution=effective(item.resolution, d.deadline, now),
                deadline=d.deadline,
                resolved_at=item.resolved_at,
            )
        )
    return Disclosure(
        subject=subject,
        reports=[
            DisclosedReport(
                report=v, member=names[v.member_id], evidence_photos=photos.get(v.id, 0)
            )
            for v in held
        ],
        inquiries=[
            Inquiry(member=names[r.actor_member_id], at=r.recorded_at, purpose=r.purpose, tag=r.tag)
            for r in rows
        ],
        disputes=list(opened.values()),
        markers=[
            DisclosedMarker(
                marker=m,
                placed_by=names[m.placed_by],
                removed_by=names[m.removed_by] if m.removed_by else None,
            )
            for m in marks
        ],
    )
