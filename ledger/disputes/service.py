"""Disputes: opened by any member on a buyer's behalf, routed to each reporting member,
resolved before the deadline (art. 25: 20 days) or the report is suppressed.

    item:  open ──(reporting member: upheld, new evidence)──▶ upheld
             │  ──(reporting member: withdrawn)───────────▶ withdrawn (report withdrawn)
             └──(deadline passes unanswered)──────────────▶ unverifiable (report suppressed)

Every other transition is refused with ``Conflict`` naming the current state.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger import pagination
from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal, Principal, require
from ledger.audit.log import record
from ledger.audit.reads import Audited, Recorder
from ledger.audit.tags import Tag
from ledger.context import Operation
from ledger.disputes.models import Dispute, DisputeItem, Resolution
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.reports import lifecycle
from ledger.reports import views as reports
from ledger.reports.content import SHA256_HEX
from ledger.reports.models import Report, ReportAction
from ledger.reports.policy import COUNTING, ReportPolicy, State, Status
from ledger.subjects.pseudonyms import check_pseudonym
from ledger.webhooks import outbox

REFERENCE = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")
MAX_REPORTS = 50


class ReasonCode(StrEnum):
    """Why a reporting member upheld or withdrew a disputed report."""

    EVIDENCE_RECHECKED = "evidence_rechecked"
    NEW_EVIDENCE = "new_evidence"
    DECISION_REVERSED = "decision_reversed"
    CANNOT_SUBSTANTIATE = "cannot_substantiate"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ItemView:
    dispute_id: uuid.UUID
    report_id: uuid.UUID
    subject: str | None
    resolution: Resolution
    opened_at: dt.datetime
    deadline: dt.datetime
    resolved_at: dt.datetime | None
    reason_code: str | None


@dataclass(frozen=True, slots=True)
class DisputeView:
    id: uuid.UUID
    subject: str
    reference: str
    opened_at: dt.datetime
    deadline: dt.datetime
    items: list[ItemView]


def _member(principal: ClientPrincipal) -> uuid.UUID:
    require(principal, Permission.DISPUTES_WRITE)
    return principal.member_id


def effective(resolution: Resolution, deadline: dt.datetime, now: dt.datetime) -> Resolution:
    """An open item past its deadline is unverifiable, whether or not the job ran."""
    if resolution is Resolution.OPEN and now >= deadline:
        return Resolution.UNVERIFIABLE
    return resolution


async def open_dispute(
    session: AsyncSession,
    op: Operation,
    principal: ClientPrincipal,
    *,
    subject: str,
    report_ids: list[uuid.UUID] | None,
    reference: str,
    policy: ReportPolicy,
) -> DisputeView:
    """Open a dispute, on the buyer's behalf, against reports on that buyer.

    Any member may open one: the buyer asks whichever platform they use. Named reports
    must be about ``subject`` and still count; another member's report is named only
    by its id, which the buyer learned from their disclosure. With no reports named,
    the dispute is about every report on the buyer that counts now: the buyer names
    themselves once and each reporting member gets its own item, with its own deadline.
    """
    member_id = _member(principal)
    check_pseudonym(subject)
    if not REFERENCE.match(reference):
        raise InvalidInput(
            "reference is 1-128 letters, digits and . _ : / -", fields=("reference",)
        )
    if report_ids is None:
        report_ids = await _counting_reports(session, subject, op.now, policy)
        if not report_ids:
            raise NotFound("no report on this subject counts now: there is nothing to dispute")
    unique = list(dict.fromkeys(report_ids))
    if not 1 <= len(unique) <= MAX_REPORTS:
        raise InvalidInput(f"name 1 to {MAX_REPORTS} reports", fields=("report_ids",))
    found = list(await session.scalars(sa.select(Report).where(Report.id.in_(unique))))
    by_id = {r.id: r for r in found if r.subject == subject}
    missing = [i for i in unique if i not in by_id]
    if missing:
        raise NotFound("a named report does not exist or is not about this subject")
    current = await reports.views(session, found, now=op.now, policy=policy)
    if len(current) != len(found):  # an expired report exists for no one
        raise NotFound("a named report does not exist or is not about this subject")
    for view in current:
        if view.status in {Status.WITHDRAWN, Status.SUPPRESSED}:
            raise Conflict(
                f"report {view.id} is {view.status.value}: it no longer counts",
                current_state=view.status.value,
            )
    dispute = Dispute(
        subject=subject,
        opened_by=member_id,
        reference=reference,
        opened_at=op.now,
        deadline=op.now + policy.dispute_window,
    )
    session.add(dispute)
    await session.flush()
    for report_id in unique:
        session.add(
            DisputeItem(
                dispute_id=dispute.id,
                report_id=report_id,
                reporting_member_id=by_id[report_id].member_id,
                resolution=Resolution.OPEN,
            )
        )
    await record(
        session,
        op.event(
            Tag.DISPUTE_OPENED,
            subject=subject,
            reference=reference,
            body={"dispute_id": str(dispute.id), "report_ids": [str(i) for i in unique]},
        ),
        now=op.now,
    )
    await session.flush()
    for member_id in dict.fromkeys(by_id[i].member_id for i in unique):
        theirs = [str(i) for i in unique if by_id[i].member_id == member_id]
        data = {
            "dispute_id": str(dispute.id),
            "subject": subject,
            "report_ids": theirs,
            "opened_at": outbox.iso(op.now),
            "deadline": outbox.iso(dispute.deadline),
        }
        await outbox.emit(session, member_id, outbox.EventType.DISPUTE_OPENED, data, now=op.now)
    return await _dispute_view(session, dispute, op.now)


async def _counting_reports(
    session: AsyncSession, subject: str, now: dt.datetime, policy: ReportPolicy
) -> list[uuid.UUID]:
    """The reports on ``subject`` that count now (at most ``MAX_REPORTS``, oldest first)."""
    found = list(
        await session.scalars(
            sa.select(Report)
            .where(Report.subject == subject, Report.state == State.ACTIVE)
            .order_by(Report.filed_at)
            .limit(MAX_REPORTS)
        )
    )
    current = await reports.views(session, found, now=now, policy=policy)
    return [v.id for v in current if v.status in COUNTING]


async def _dispute_view(session: AsyncSession, dispute: Dispute, now: dt.datetime) -> DisputeView:
    items = await session.scalars(
        sa.select(DisputeItem)
        .where(DisputeItem.dispute_id == dispute.id)
        .order_by(DisputeItem.report_id)
    )
    return _dispute_view_of(dispute, list(items), now)


def _dispute_view_of(dispute: Dispute, items: list[DisputeItem], now: dt.datetime) -> DisputeView:
    assert dispute.subject is not None
    return DisputeView(
        id=dispute.id,
        subject=dispute.subject,
        reference=dispute.reference,
        opened_at=dispute.opened_at,
        deadline=dispute.deadline,
        items=[_item(i, dispute, now) for i in items],
    )


def _item(item: DisputeItem, dispute: Dispute, now: dt.datetime) -> ItemView:
    return ItemView(
        dispute_id=item.dispute_id,
        report_id=item.report_id,
        subject=dispute.subject,
        resolution=effective(item.resolution, dispute.deadline, now),
        opened_at=dispute.opened_at,
        deadline=dispute.deadline,
        resolved_at=item.resolved_at,
        reason_code=item.reason_code,
    )


async def list_assigned(
    session: AsyncSession,
    rec: Recorder,
    principal: ClientPrincipal,
    *,
    resolution: Resolution | None,
    cursor: str | None = None,
    limit: int = 100,
) -> Audited[tuple[list[ItemView], str | None]]:
    """Dispute items on the caller's reports (``assigned=me``), oldest deadline first;
    a page and the cursor of the next. Recorded."""
    now = rec.op.now
    order = (Dispute.deadline, DisputeItem.report_id, DisputeItem.dispute_id)
    query = (
        sa.select(DisputeItem, Dispute)
        .join(Dispute, Dispute.id == DisputeItem.dispute_id)
        .where(DisputeItem.reporting_member_id == _member(principal))
        .order_by(*order)
    )
    if cursor is not None:
        after = pagination.decode(cursor, "assigned", [dt.datetime, uuid.UUID, uuid.UUID])
        query = query.where(sa.tuple_(*order) > sa.tuple_(*(sa.literal(v) for v in after)))
    rows = list(await session.execute(_with_resolution(query, resolution, now).limit(limit + 1)))
    page = pagination.cut(
        [_item(item, dispute, now) for item, dispute in rows],
        limit,
        "assigned",
        lambda i: (i.deadline, i.report_id, i.dispute_id),
    )
    event_id = await rec.record(Tag.DISPUTES_LISTED, body={"assigned": "me", "count": len(page[0])})
    return Audited(page, event_id)


@dataclass(frozen=True, slots=True)
class OverseenItem:
    """A dispute item as an auditor sees it: with who opened it and whose report it is."""

    item: ItemView
    opened_by: uuid.UUID
    reporting_member_id: uuid.UUID


async def list_all(
    session: AsyncSession,
    rec: Recorder,
    principal: Principal,
    *,
    resolution: Resolution | None,
    limit: int = 500,
) -> Audited[list[OverseenItem]]:
    """Every dispute item (auditors), open ones by nearest deadline, then the rest.
    Recorded."""
    require(principal, Permission.AUDIT_READ)
    now = rec.op.now
    query = (
        sa.select(DisputeItem, Dispute)
        .join(Dispute, Dispute.id == DisputeItem.dispute_id)
        .order_by(Dispute.deadline, DisputeItem.report_id)
    )
    rows = await session.execute(_with_resolution(query, resolution, now).limit(limit))
    found = [
        OverseenItem(
            item=_item(item, dispute, now),
            opened_by=dispute.opened_by,
            reporting_member_id=item.reporting_member_id,
        )
        for item, dispute in rows
    ]
    event_id = await rec.record(Tag.DISPUTES_LISTED, body={"view": "all", "count": len(found)})
    return Audited(found, event_id)


def _with_resolution(
    query: sa.Select[DisputeItem, Dispute], resolution: Resolution | None, now: dt.datetime
) -> sa.Select[DisputeItem, Dispute]:
    """Filter by the *effective* resolution (an open item past its deadline counts as
    unverifiable, whether or not the job has recorded it yet)."""
    if resolution is Resolution.OPEN:
        return query.where(DisputeItem.resolution == Resolution.OPEN, Dispute.deadline > now)
    if resolution is Resolution.UNVERIFIABLE:
        return query.where(
            sa.or_(
                DisputeItem.resolution == Resolution.UNVERIFIABLE,
                sa.and_(DisputeItem.resolution == Resolution.OPEN, Dispute.deadline <= now),
            )
        )
    if resolution is not None:
        return query.where(DisputeItem.resolution == resolution)
    return query


async def list_opened(
    session: AsyncSession,
    rec: Recorder,
    principal: ClientPrincipal,
    *,
    cursor: str | None = None,
    limit: int = 100,
) -> Audited[tuple[list[DisputeView], str | None]]:
    """Disputes the caller opened on buyers' behalf, newest first; a page and the cursor
    of the next. Two statements, whatever the page's size. Recorded."""
    now = rec.op.now
    order = (Dispute.opened_at, Dispute.id)
    query = (
        sa.select(Dispute)
        .where(Dispute.opened_by == _member(principal), Dispute.subject.is_not(None))
        .order_by(*(c.desc() for c in order))
    )
    if cursor is not None:
        after = pagination.decode(cursor, "opened", [dt.datetime, uuid.UUID])
        query = query.where(sa.tuple_(*order) < sa.tuple_(*(sa.literal(v) for v in after)))
    page, next_cursor = pagination.cut(
        list(await session.scalars(query.limit(limit + 1))),
        limit,
        "opened",
        lambda d: (d.opened_at, d.id),
    )
    items: dict[uuid.UUID, list[DisputeItem]] = {d.id: [] for d in page}
    if page:
        for item in await session.scalars(
            sa.select(DisputeItem)
            .where(DisputeItem.dispute_id.in_(items))
            .order_by(DisputeItem.report_id)
        ):
            items[item.dispute_id].append(item)
    views = [_dispute_view_of(d, items[d.id], now) for d in page]
    event_id = await rec.record(Tag.DISPUTES_LISTED, body={"opened": "me", "count": len(views)})
    return Audited((views, next_cursor), event_id)


async def resolve(
    session: AsyncSession,
    op: Operation,
    principal: ClientPrincipal,
    *,
    dispute_id: uuid.UUID,
    report_id: uuid.UUID,
    outcome: Resolution,
    reason_code: ReasonCode,
    evidence_sha256: str | None,
    policy: ReportPolicy,
) -> ItemView:
    """The reporting member answers a dispute item: ``upheld`` (with a new evidence
    digest) or ``withdrawn`` (the report is withdrawn)."""
    member_id = _member(principal)
    row = (
        await session.execute(
            sa.select(DisputeItem, Dispute)
            .join(Dispute, Dispute.id == DisputeItem.dispute_id)
            .where(DisputeItem.dispute_id == dispute_id, DisputeItem.report_id == report_id)
            .with_for_update()
        )
    ).one_or_none()
    if row is None or row[0].reporting_member_id != member_id:
        raise NotFound("no such dispute on one of your reports")
    item, dispute = row
    current = effective(item.resolution, dispute.deadline, op.now)
    if current is not Resolution.OPEN:
        raise Conflict(f"this dispute item is already {current.value}", current_state=current.value)
    if outcome is Resolution.UPHELD:
        if evidence_sha256 is None or not SHA256_HEX.match(evidence_sha256):
            raise InvalidInput(
                "upholding needs the SHA-256 (64 lowercase hex) of the re-checked evidence",
                fields=("evidence_sha256",),
            )
        session.add(
            ReportAction(
                report_id=report_id,
                kind="upheld",
                reason=reason_code.value,
                evidence_sha256=evidence_sha256,
                dispute_id=dispute_id,
                member_id=member_id,
                at=op.now,
            )
        )
    elif outcome is Resolution.WITHDRAWN:
        await lifecycle.withdraw(
            session,
            op,
            principal,
            report_id,
            lifecycle.WithdrawalReason.DISPUTE_ACCEPTED,
            policy=policy,
            dispute_id=dispute_id,
        )
    else:
        raise InvalidInput("a resolution is 'upheld' or 'withdrawn'", fields=("outcome",))
    item.resolution = outcome
    item.reason_code = reason_code.value
    item.evidence_sha256 = evidence_sha256
    item.resolved_at = op.now
    await record(
        session,
        op.event(
            Tag.DISPUTE_RESOLVED,
            subject=dispute.subject,
            body={
                "dispute_id": str(dispute_id),
                "report_id": str(report_id),
                "outcome": outcome.value,
                "reason_code": reason_code.value,
            },
        ),
        now=op.now,
    )
    await session.flush()
    if outcome is Resolution.UPHELD and dispute.subject is not None:
        await outbox.assessment_changed(
            session, op, [dispute.subject], outbox.Cause.UPHELD, policy=policy
        )
    return _item(item, dispute, op.now)


async def suppress_unanswered(session: AsyncSession, op: Operation, *, policy: ReportPolicy) -> int:
    """Close every item past its deadline as unverifiable and suppress its report; the
    members that recently asked about the buyer are told."""
    rows = list(
        await session.execute(
            sa.select(DisputeItem, Dispute)
            .join(Dispute, Dispute.id == DisputeItem.dispute_id)
            .where(DisputeItem.resolution == Resolution.OPEN, Dispute.deadline <= op.now)
            .with_for_update()
        )
    )
    suppressed: list[str] = []
    for item, dispute in rows:
        item.resolution = Resolution.UNVERIFIABLE
        item.resolved_at = op.now
        report = await session.get(Report, item.report_id)
        assert report is not None
        if report.state is State.ACTIVE:
            report.state = State.SUPPRESSED
            report.state_changed_at = op.now
            if report.subject is not None:
                suppressed.append(report.subject)
        session.add(
            ReportAction(
                report_id=item.report_id,
                kind="suppression",
                reason="dispute_unanswered",
                dispute_id=dispute.id,
                at=op.now,
            )
        )
        await record(
            session,
            op.event(
                Tag.DISPUTE_UNANSWERED,
                subject=dispute.subject,
                body={"dispute_id": str(dispute.id), "report_id": str(item.report_id)},
            ),
            now=op.now,
        )
    await session.flush()
    await outbox.assessment_changed(session, op, suppressed, outbox.Cause.SUPPRESSED, policy=policy)
    return len(rows)


async def remind_near_deadline(
    session: AsyncSession, op: Operation, *, policy: ReportPolicy
) -> int:
    """Send ``dispute.deadline_near`` once per open item whose deadline is within the
    reminder period, to its reporting member."""
    rows = list(
        await session.execute(
            sa.select(DisputeItem, Dispute)
            .join(Dispute, Dispute.id == DisputeItem.dispute_id)
            .where(
                DisputeItem.resolution == Resolution.OPEN,
                DisputeItem.reminded_at.is_(None),
                Dispute.deadline > op.now,
                Dispute.deadline <= op.now + policy.dispute_reminder,
            )
            .with_for_update()
        )
    )
    for item, dispute in rows:
        item.reminded_at = op.now
        data = {
            "dispute_id": str(dispute.id),
            "subject": dispute.subject,
            "report_ids": [str(item.report_id)],
            "deadline": outbox.iso(dispute.deadline),
        }
        await outbox.emit(
            session,
            item.reporting_member_id,
            outbox.EventType.DISPUTE_DEADLINE_NEAR,
            data,
            now=op.now,
        )
    await session.flush()
    return len(rows)
