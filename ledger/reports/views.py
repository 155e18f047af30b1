"""Reading a member's reports: views at a moment, one report, a filtered page.

A member sees only its own reports: every function takes the principal, and another
member's report is "not found". Expired reports are returned to no one. ``get_report``
and ``list_reports`` record the read (ledger/audit/reads.py) before they return it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger import pagination
from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal, require
from ledger.audit.reads import Audited, Recorder
from ledger.audit.tags import Tag
from ledger.disputes.models import Dispute, DisputeItem, Resolution
from ledger.errors import (
    NotFound,
)
from ledger.markers import history
from ledger.members.models import Member
from ledger.reports.content import filed_values
from ledger.reports.models import Report, ReportStatement
from ledger.reports.policy import Basis, Category, ReportPolicy, State, Status, status
from ledger.reports.queries import status_is
from ledger.subjects.pseudonyms import check_pseudonym


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
    filed_under_marker: bool = False  # the subject had a protective marker in force


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
    marked = await history.marked_at_filing(
        session, [(r.id, r.subject, r.filed_at) for r in reports]
    )
    out = []
    for r in reports:
        view = view_of(
            r,
            deadlines.get(r.id, []),
            statements.get(r.id, []),
            now,
            policy,
            filed_under_marker=r.id in marked,
        )
        if view is not None:
            out.append(view)
    return out


def view_of(
    r: Report,
    deadlines: list[dt.datetime],
    statements: list[StatementView],
    now: dt.datetime,
    policy: ReportPolicy,
    *,
    filed_under_marker: bool = False,
) -> ReportView | None:
    """The report as its member sees it at ``now``; None once it has expired."""
    current = report_status(r, deadlines, now, policy)
    if current is Status.EXPIRED:
        return None
    return ReportView(
        **filed_values(r),
        id=r.id,
        member_id=r.member_id,
        filed_at=r.filed_at,
        expires_at=r.expires_at,
        status=current,
        open_disputes=len(deadlines),
        audit_event_id=r.audit_event_id,
        statements=statements,
        filed_under_marker=filed_under_marker,
    )


async def view_now(
    session: AsyncSession, report: Report, now: dt.datetime, policy: ReportPolicy
) -> ReportView:
    found = await views(session, [report], now=now, policy=policy, with_statements=True)
    if not found:
        raise NotFound("no such report among yours (expired reports are returned to no one)")
    return found[0]


def reporting_member(principal: ClientPrincipal) -> uuid.UUID:
    require(principal, Permission.REPORTS_WRITE)
    return principal.member_id


async def own_report(
    session: AsyncSession, principal: ClientPrincipal, report_id: uuid.UUID
) -> Report:
    report = await session.get(Report, report_id)
    if report is None or report.member_id != reporting_member(principal):
        raise NotFound("no such report among yours (expired reports are returned to no one)")
    return report


async def get_report(
    session: AsyncSession,
    rec: Recorder,
    principal: ClientPrincipal,
    report_id: uuid.UUID,
    *,
    policy: ReportPolicy,
) -> Audited[ReportView]:
    report = await own_report(session, principal, report_id)
    view = await view_now(session, report, rec.op.now, policy)
    event_id = await rec.record(
        Tag.REPORT_READ, subject=view.subject, body={"report_id": str(view.id)}
    )
    return Audited(view, event_id)


@dataclass(frozen=True, slots=True)
class ReportFilter:
    status: Status | None = None
    category: Category | None = None
    subject: str | None = None
    filed_since: dt.datetime | None = None
    filed_until: dt.datetime | None = None


async def list_reports(
    session: AsyncSession,
    rec: Recorder,
    principal: ClientPrincipal,
    filt: ReportFilter,
    *,
    policy: ReportPolicy,
    cursor: str | None = None,
    limit: int = 100,
) -> Audited[tuple[list[ReportView], str | None]]:
    """The caller's reports, oldest first: a page and the cursor of the next one.

    Every filter, status included, is a condition in one statement on the member's
    ``(member_id, state, id)`` index: a page costs what it returns, however many reports
    the member has (a test counts the statements)."""
    now = rec.op.now
    query = sa.select(Report).where(
        Report.member_id == reporting_member(principal),
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
    found = await views(session, page, now=now, policy=policy)
    event_id = await rec.record(
        Tag.REPORTS_LISTED, subject=filt.subject, body={"count": len(found)}
    )
    return Audited((found, next_cursor), event_id)


async def member_names(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Members' display names (京东), as people are shown them."""
    if not ids:
        return {}
    rows = await session.execute(
        sa.select(Member.id, Member.display_name).where(Member.id.in_(ids))
    )
    return dict(rows.all())
