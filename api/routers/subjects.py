"""What a buyer asks for through a member platform: their file, and a statement."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.auth import authorize_client, operation
from api.deps import ReadSessionDep, RuntimeDep, SessionDep
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
from ledger.audit.tags import Tag
from ledger.subjects import service as subjects

router = APIRouter(prefix="/v1/subjects", tags=["subjects"])

Discloser = Annotated[ClientPrincipal, Depends(authorize_client(Permission.SUBJECTS_DISCLOSE))]
OnBehalf = Annotated[ClientPrincipal, Depends(authorize_client(Permission.DISPUTES_WRITE))]

HOW_TO_DISPUTE = (
    "To contest a report, ask the platform you use to open a dispute "
    "(POST /v1/disputes) naming the report ids above. The reporting platform must answer "
    "within 20 days; a report left unanswered stops counting. You may also add a statement "
    "of up to 200 characters to any report, which is kept and shown with it."
)


@router.post("/disclosure", response_model=DisclosureOut)
async def disclosure(
    body: DisclosureIn, principal: Discloser, session: ReadSessionDep, runtime: RuntimeDep
) -> DisclosureOut:
    """A buyer's own file (art. 17): every report held on them that has not expired,
    whatever its status, with the reporting member, and who looked them up in the last
    two years. Recorded before it is answered."""
    now = runtime.clock.now()
    disclosed = await subjects.disclose(
        session, principal, subject=body.subject, now=now, policy=runtime.policy
    )
    event = operation(runtime, principal).event(
        Tag.SUBJECT_DISCLOSED,
        subject=body.subject,
        purpose=body.purpose,
        reference=body.reference,
        body={"reports": len(disclosed.reports)},
    )
    await runtime.audit.writer.write(event)
    return DisclosureOut(
        subject=disclosed.subject,
        reports=[
            DisclosedReportOut(reporting_member=r.member, report=report_out(r.report))
            for r in disclosed.reports
        ],
        inquiries=[
            InquiryOut(member=i.member, at=i.at, purpose=i.purpose, kind=i.tag)
            for i in disclosed.inquiries
        ],
        how_to_dispute=HOW_TO_DISPUTE,
    )


@router.post("/statements", response_model=ReportOut, status_code=201)
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
