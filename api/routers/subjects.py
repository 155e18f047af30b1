"""What a buyer asks for through a member platform: their file, and a statement."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from api.auth import authorize_client, operation, recorder
from api.deps import ReadSessionDep, RuntimeDep, SessionDep
from api.locales import language_headers, locale_of
from api.openapi import problems
from api.routers.reports import report_out
from api.schemas.reports import (
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
from ledger.subjects import service as subjects

router = APIRouter(prefix="/v1/subjects", tags=["subjects"])

Discloser = Annotated[ClientPrincipal, Depends(authorize_client(Permission.SUBJECTS_DISCLOSE))]
OnBehalf = Annotated[ClientPrincipal, Depends(authorize_client(Permission.DISPUTES_WRITE))]


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
    )


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
