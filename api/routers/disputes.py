"""Disputes: opened on a buyer's behalf, answered by the reporting member."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from api.auth import authorize_client, operation, recorder
from api.deps import ReadSessionDep, RuntimeDep, SessionDep
from api.locales import language_headers, locale_of
from api.openapi import problems
from api.schemas import Cursor, DisputeId, ReportId, page_limit
from api.schemas.reports import (
    DisputeIn,
    DisputeItemOut,
    DisputeList,
    DisputeOut,
    ResolutionIn,
)
from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal
from ledger.disputes import service as disputes
from ledger.disputes.explanations import for_the_buyer
from ledger.disputes.models import Resolution
from ledger.disputes.service import DisputeView, ItemView
from ledger.errors import InvalidInput
from ledger.runtime import Runtime

router = APIRouter(prefix="/v1", tags=["disputes"])

Disputer = Annotated[ClientPrincipal, Depends(authorize_client(Permission.DISPUTES_WRITE))]


@dataclass(frozen=True, slots=True)
class Texts:
    """The language and time zone of the texts for the buyer."""

    locale: str
    zone: str

    @classmethod
    def of(cls, request: Request, runtime: Runtime, explicit: str | None = None) -> Texts:
        return cls(locale_of(request, explicit), runtime.settings.display_timezone)


def item_out(item: ItemView, now_ts: float, texts: Texts) -> DisputeItemOut:
    left = max(0, math.ceil((item.deadline.timestamp() - now_ts) / 86400))
    open_ = item.resolution is Resolution.OPEN
    return DisputeItemOut(
        dispute_id=item.dispute_id,
        report_id=item.report_id,
        subject=item.subject,
        resolution=item.resolution,
        opened_at=item.opened_at,
        deadline=item.deadline,
        days_left=left if open_ else 0,
        resolved_at=item.resolved_at,
        reason_code=item.reason_code,
        for_the_buyer=for_the_buyer(item, texts.locale, texts.zone),
    )


def dispute_out(view: DisputeView, now_ts: float, texts: Texts) -> DisputeOut:
    return DisputeOut(
        id=view.id,
        subject=view.subject,
        reference=view.reference,
        opened_at=view.opened_at,
        deadline=view.deadline,
        items=[item_out(i, now_ts, texts) for i in view.items],
    )


@router.post("/disputes", response_model=DisputeOut, status_code=201, responses=problems(404, 409))
async def open_dispute(
    body: DisputeIn,
    principal: Disputer,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
    response: Response,
) -> DisputeOut:
    """Open a dispute on a buyer's behalf against one or more reports on them.

    Each report's member must answer within 20 days; unanswered, the report is
    suppressed. The dispute shows beside the report while it is open.
    """
    op = operation(runtime, principal)
    view = await disputes.open_dispute(
        session,
        op,
        principal,
        subject=body.subject,
        report_ids=body.report_ids,
        reference=body.reference,
        policy=runtime.policy,
    )
    runtime.risk.changing([body.subject])  # before the commit: see the risk query's notes
    texts = Texts.of(request, runtime, body.locale)
    response.headers.update(language_headers(texts.locale))
    return dispute_out(view, op.now.timestamp(), texts)


@router.get("/disputes", response_model=DisputeList)
async def list_disputes(
    principal: Disputer,
    session: ReadSessionDep,
    runtime: RuntimeDep,
    request: Request,
    response: Response,
    assigned: Annotated[Literal["me"] | None, Query(description="disputes on your reports")] = None,
    opened: Annotated[Literal["me"] | None, Query(description="disputes you opened")] = None,
    status: Annotated[
        Resolution | None, Query(description="assigned=me: items with this resolution")
    ] = None,
    cursor: Cursor = None,
    limit: Annotated[int, page_limit(500)] = 100,
) -> DisputeList:
    """``assigned=me``: dispute items on your reports, nearest deadline first (filter by
    ``status``, e.g. ``open``); ``opened=me``: the disputes you opened for buyers."""
    if (assigned is None) == (opened is None):
        raise InvalidInput("ask for assigned=me or opened=me", fields=("assigned", "opened"))
    rec = recorder(runtime, principal)
    now = rec.op.now.timestamp()
    texts = Texts.of(request, runtime)
    response.headers.update(language_headers(texts.locale))
    if assigned:
        assigned_page = await disputes.list_assigned(
            session, rec, principal, resolution=status, cursor=cursor, limit=limit
        )
        items, next_cursor = assigned_page.value
        return DisputeList(items=[item_out(i, now, texts) for i in items], next_cursor=next_cursor)
    opened_page = await disputes.list_opened(session, rec, principal, cursor=cursor, limit=limit)
    views, next_cursor = opened_page.value
    return DisputeList(
        disputes=[dispute_out(v, now, texts) for v in views], next_cursor=next_cursor
    )


@router.post(
    "/disputes/{dispute_id}/reports/{report_id}/resolution",
    response_model=DisputeItemOut,
    responses=problems(404, 409),
)
async def resolve(
    dispute_id: DisputeId,
    report_id: ReportId,
    body: ResolutionIn,
    principal: Disputer,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
    response: Response,
) -> DisputeItemOut:
    """Answer a dispute on your report: ``upheld`` (with the new evidence digest) or
    ``withdrawn`` (the report is withdrawn). 409 with the current state otherwise."""
    op = operation(runtime, principal)
    item = await disputes.resolve(
        session,
        op,
        principal,
        dispute_id=dispute_id,
        report_id=report_id,
        outcome=Resolution(body.outcome),
        reason_code=body.reason_code,
        evidence_sha256=body.evidence_sha256,
        policy=runtime.policy,
    )
    if item.subject is not None:
        runtime.risk.changing([item.subject])
    texts = Texts.of(request, runtime)
    response.headers.update(language_headers(texts.locale))
    return item_out(item, op.now.timestamp(), texts)
