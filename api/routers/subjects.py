"""What a buyer asks for through a member platform: their file, and a statement."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from api.auth import authorize_client, operation, recorder
from api.deps import ReadSessionDep, RuntimeDep, SessionDep
from api.locales import language_headers, locale_of
from api.openapi import problems
from api.routers.reports import report_out
from api.schemas.markers import MarkerIn, MarkerOut, MarkerRemovalIn
from api.schemas.reports import (
    DisclosedDisputeOut,
    DisclosedItemOut,
    DisclosedMarkerOut,
    DisclosedReportOut,
    DisclosureIn,
    DisclosureOut,
    InquiryOut,
    ReportOut,
    StatementIn,
)
from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal
from ledger.i18n import gettext
from ledger.markers import service as markers
from ledger.markers.service import MarkerView
from ledger.runtime import Runtime
from ledger.subjects import service as subjects

router = APIRouter(prefix="/v1/subjects", tags=["subjects"])

Discloser = Annotated[ClientPrincipal, Depends(authorize_client(Permission.SUBJECTS_DISCLOSE))]
OnBehalf = Annotated[ClientPrincipal, Depends(authorize_client(Permission.DISPUTES_WRITE))]
Protector = Annotated[ClientPrincipal, Depends(authorize_client(Permission.MARKERS_WRITE))]
MarkerId = Annotated[uuid.UUID, Path(description="the marker's id")]


@router.post("/disclosure", response_model=DisclosureOut)
async def disclosure(
    body: DisclosureIn,
    principal: Discloser,
    session: ReadSessionDep,
    runtime: RuntimeDep,
    request: Request,
    response: Response,
) -> DisclosureOut:
    """A buyer's own file (art. 17): every report held on them that has not expired,
    whatever its status, with the reporting member, and who looked them up in the last
    two years. Recorded before it is answered."""
    read = await subjects.disclose(
        session,
        recorder(runtime, principal),
        principal,
        subject=body.subject,
        reference=body.reference,
        policy=runtime.policy,
    )
    disclosed = read.value
    locale = locale_of(request, body.locale)
    response.headers.update(language_headers(locale))
    return DisclosureOut(
        subject=disclosed.subject,
        reports=[
            DisclosedReportOut(
                reporting_member=r.member,
                report=report_out(r.report),
                evidence_photos=r.evidence_photos,
            )
            for r in disclosed.reports
        ],
        inquiries=[
            InquiryOut(member=i.member, at=i.at, purpose=i.purpose, kind=i.tag)
            for i in disclosed.inquiries
        ],
        how_to_dispute=gettext(locale, disclosed.how_to_dispute),
        disputes=[
            DisclosedDisputeOut(
                id=d.id,
                opened_by=d.opened_by,
                opened_at=d.opened_at,
                items=[
                    DisclosedItemOut(
                        report_id=i.report_id,
                        reporting_member=i.member,
                        resolution=i.resolution,
                        deadline=i.deadline,
                        resolved_at=i.resolved_at,
                    )
                    for i in d.items
                ],
            )
            for d in disclosed.disputes
        ],
        markers=[
            DisclosedMarkerOut(
                **marker_out(m.marker, runtime).model_dump(),
                placed_by=m.placed_by,
                removed_by=m.removed_by,
            )
            for m in disclosed.markers
        ],
    )


def marker_out(view: MarkerView, runtime: Runtime) -> MarkerOut:
    return MarkerOut(
        id=view.id,
        subject=view.subject,
        kind=view.kind.value,
        placed_at=view.placed_at,
        expires_at=view.expires_at,
        renewed_at=view.renewed_at,
        removed_at=view.removed_at,
        in_force=view.active(runtime.clock.now()),
    )


@router.post("/markers", response_model=MarkerOut, status_code=201, responses=problems(409))
async def place_marker(
    body: MarkerIn, principal: Protector, session: SessionDep, runtime: RuntimeDep
) -> MarkerOut:
    """At the buyer's request, mark their identity as misused (``identity_misused``):
    for two years, risk answers and evidence checks on them advise verifying who you
    deal with, not treating them as abusive. 409 if one is in force: renew it."""
    runtime.risk.changing([body.subject])
    view = await markers.place(
        session,
        operation(runtime, principal),
        principal,
        subject=body.subject,
        reference=body.reference,
        policy=runtime.policy,
    )
    return marker_out(view, runtime)


@router.post("/markers/{marker_id}/renewal", response_model=MarkerOut, responses=problems(404))
async def renew_marker(
    marker_id: MarkerId,
    body: MarkerIn,
    principal: Protector,
    session: SessionDep,
    runtime: RuntimeDep,
) -> MarkerOut:
    """At the buyer's request, renew their marker: two more years from now."""
    runtime.risk.changing([body.subject])
    view = await markers.renew(
        session,
        operation(runtime, principal),
        principal,
        subject=body.subject,
        marker_id=marker_id,
        reference=body.reference,
        policy=runtime.policy,
    )
    return marker_out(view, runtime)


@router.post("/markers/{marker_id}/removal", response_model=MarkerOut, responses=problems(404))
async def remove_marker(
    marker_id: MarkerId,
    body: MarkerRemovalIn,
    principal: Protector,
    session: SessionDep,
    runtime: RuntimeDep,
) -> MarkerOut:
    """Remove the buyer's marker, only because the buyer asked for it themself."""
    view = await markers.remove(
        session,
        operation(runtime, principal),
        principal,
        subject=body.subject,
        marker_id=marker_id,
        reference=body.reference,
        at_buyers_request=body.at_buyers_request,
    )
    runtime.risk.changing([body.subject])
    return marker_out(view, runtime)


@router.post("/statements", response_model=ReportOut, status_code=201, responses=problems(404, 409))
async def add_statement(
    body: StatementIn, principal: OnBehalf, session: SessionDep, runtime: RuntimeDep
) -> ReportOut:
    """Attach the buyer's statement (at most 200 characters) to a report on them; it is
    kept, and shown with the report to its member and in disclosures (art. 16)."""
    view = await subjects.add_statement(
        session,
        operation(runtime, principal),
        principal,
        subject=body.subject,
        report_id=body.report_id,
        text=body.text,
        policy=runtime.policy,
    )
    return report_out(view)
