"""Filing and managing a member's own reports."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import AwareDatetime, ValidationError

from api.auth import authorize_client, operation, recorder
from api.deps import ReadSessionDep, RuntimeDep, SessionDep
from api.errors import field_errors
from api.middleware import body_limit
from api.openapi import problems
from api.schemas import (
    Cursor,
    ReportId,
    checked_by_the_core,
    json_body,
    page_limit,
    parse_body,
)
from api.schemas.reports import (
    BatchIn,
    BatchItemOut,
    BatchOut,
    ItemError,
    NoticeIn,
    ReportIn,
    ReportOut,
    ReportPage,
    WithdrawalIn,
)
from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal
from ledger.errors import DuplicateReport, InvalidInput, LedgerError
from ledger.reports import filing, idempotency, lifecycle
from ledger.reports import views as reports
from ledger.reports.content import ReportInput
from ledger.reports.filing import Filed, FileResult
from ledger.reports.policy import Category, Status
from ledger.reports.views import ReportFilter, ReportView
from ledger.subjects.pseudonyms import PSEUDONYM_PATTERN

router = APIRouter(prefix="/v1", tags=["reports"])

Reporter = Annotated[ClientPrincipal, Depends(authorize_client(Permission.REPORTS_WRITE))]


def report_out(view: ReportView) -> ReportOut:
    return ReportOut.model_validate(view, from_attributes=True)


def to_input(body: ReportIn) -> ReportInput:
    fields = body.model_dump(exclude={"evidence_photos"})
    fields["evidence_sha256"] = tuple(d.lower() for d in body.evidence_sha256)
    photos = [p.photo(f"evidence_photos.{n}") for n, p in enumerate(body.evidence_photos)]
    return ReportInput(**fields, evidence_photos=tuple(photos))


@router.post(
    "/reports",
    response_model=ReportOut,
    status_code=201,
    responses={
        200: {"model": ReportOut, "description": "the same report was filed before"},
        **problems(409),
    },
)
async def file_report(
    body: ReportIn,
    principal: Reporter,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
) -> ReportOut:
    """File one confirmed case.

    Idempotent per ``case_ref``: re-sending the same report answers 200 with the report
    filed before; a different report under the same ``case_ref`` is 409, with the
    existing one's ``Location``.
    """
    runtime.risk.changing([body.subject])
    result = await filing.file_report(
        session,
        operation(runtime, principal),
        principal,
        to_input(body),
        policy=runtime.policy,
        key=runtime.fingerprint_key,
    )
    response.headers["Location"] = f"/v1/reports/{result.report.id}"
    if result.outcome is Filed.DUPLICATE:
        response.status_code = 200
    return report_out(result.report)


@router.post(
    "/reports:batch",
    response_model=BatchOut,
    # 1,000 reports of up to 20 digests each, with room for their evidence photos.
    openapi_extra=json_body(BatchIn) | body_limit(4 * 1024 * 1024),
    responses=problems(409),
)
async def file_batch(
    request: Request,
    principal: Reporter,
    session: SessionDep,
    runtime: RuntimeDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=128,
            json_schema_extra=checked_by_the_core(pattern=r"^[A-Za-z0-9._:-]{1,128}$"),
            description="a key of yours for this batch: re-sent with the same body, the "
            "first answer is replayed; with another body, 409",
        ),
    ] = None,
) -> Response:
    """File up to 1,000 reports; the answer says, per item, accepted, duplicate or rejected.

    Not all-or-nothing: every valid item is filed and every invalid one is rejected with
    its reasons, and no item is ever half-written. With an ``Idempotency-Key``, a retry
    of the same request gets the same answer and files nothing twice.
    """
    raw = await request.body()
    digest = idempotency.request_digest(raw)
    op = operation(runtime, principal)
    if idempotency_key is not None:
        stored = await idempotency.claim(
            session, principal.member_id, idempotency_key, digest, now=op.now
        )
        if stored is not None:
            return Response(
                stored.response,
                status_code=stored.status_code,
                media_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
    batch = parse_body(BatchIn, raw)
    items: list[BatchItemOut | None] = [None] * len(batch.reports)
    valid: list[tuple[int, ReportInput]] = []
    for index, raw_item in enumerate(batch.reports):
        try:
            valid.append((index, to_input(ReportIn.model_validate(raw_item))))
        except ValidationError as exc:
            errors = [ItemError(**e) for e in field_errors(exc.errors(include_input=False))]
            items[index] = BatchItemOut(
                index=index, status="rejected", type="/problems/validation", errors=errors
            )
    runtime.risk.changing(data.subject for _, data in valid)
    results = await filing.file_reports(
        session,
        op,
        principal,
        [data for _, data in valid],
        policy=runtime.policy,
        key=runtime.fingerprint_key,
    )
    for (index, _), result in zip(valid, results, strict=True):
        items[index] = _item_out(index, result)
    done = [item for item in items if item is not None]
    answer = BatchOut(
        accepted=sum(i.status == "accepted" for i in done),
        duplicate=sum(i.status == "duplicate" for i in done),
        rejected=sum(i.status == "rejected" for i in done),
        items=done,
    )
    text = answer.model_dump_json()
    if idempotency_key is not None:
        await idempotency.complete(
            session, principal.member_id, idempotency_key, status_code=200, response=text
        )
    return Response(text, media_type="application/json")


def _item_out(index: int, result: FileResult | LedgerError) -> BatchItemOut:
    if isinstance(result, DuplicateReport):
        return BatchItemOut(
            index=index,
            status="rejected",
            type="/problems/conflict",
            report_id=uuid.UUID(result.report_id),
            errors=[ItemError(field="case_ref", detail=result.message)],
        )
    if isinstance(result, InvalidInput):
        return BatchItemOut(
            index=index,
            status="rejected",
            type="/problems/validation",
            errors=[
                ItemError(field=f, detail=result.message) for f in result.fields or ("report",)
            ],
        )
    if isinstance(result, LedgerError):
        return BatchItemOut(
            index=index,
            status="rejected",
            type="/problems/validation",
            errors=[ItemError(field="report", detail=result.message)],
        )
    status = "accepted" if result.outcome is Filed.CREATED else "duplicate"
    return BatchItemOut(index=index, status=status, report_id=result.report.id)


@router.get("/reports/{report_id}", response_model=ReportOut, responses=problems(404))
async def get_report(
    report_id: ReportId, principal: Reporter, session: ReadSessionDep, runtime: RuntimeDep
) -> ReportOut:
    """One of your reports (another member's, or an expired one, is 404)."""
    read = await reports.get_report(
        session, recorder(runtime, principal), principal, report_id, policy=runtime.policy
    )
    return report_out(read.value)


@router.get("/reports", response_model=ReportPage)
async def list_reports(
    principal: Reporter,
    session: ReadSessionDep,
    runtime: RuntimeDep,
    status: Annotated[Status | None, Query(description="reports with this status now")] = None,
    category: Annotated[Category | None, Query(description="reports of this category")] = None,
    subject: Annotated[
        str | None,
        Query(
            max_length=64,
            description="reports on this pseudonym",
            json_schema_extra=checked_by_the_core(pattern=PSEUDONYM_PATTERN),
        ),
    ] = None,
    filed_since: Annotated[AwareDatetime | None, Query(description="ISO 8601, with offset")] = None,
    filed_until: Annotated[AwareDatetime | None, Query(description="ISO 8601, with offset")] = None,
    cursor: Cursor = None,
    limit: Annotated[int, page_limit(500)] = 100,
) -> ReportPage:
    """Your reports, oldest first, with filters and a cursor."""
    filt = ReportFilter(
        status=status,
        category=category,
        subject=subject,
        filed_since=filed_since,
        filed_until=filed_until,
    )
    read = await reports.list_reports(
        session,
        recorder(runtime, principal),
        principal,
        filt,
        policy=runtime.policy,
        cursor=cursor,
        limit=limit,
    )
    page, next_cursor = read.value
    return ReportPage(reports=[report_out(v) for v in page], next_cursor=next_cursor)


@router.post(
    "/reports/{report_id}/withdrawal", response_model=ReportOut, responses=problems(404, 409)
)
async def withdraw(
    report_id: ReportId,
    body: WithdrawalIn,
    principal: Reporter,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ReportOut:
    """Withdraw one of your reports, with a reason. Nothing is deleted: the withdrawal is
    recorded beside the report, which stops counting at once."""
    view = await lifecycle.withdraw(
        session,
        operation(runtime, principal),
        principal,
        report_id,
        body.reason,
        policy=runtime.policy,
    )
    runtime.risk.changing([view.subject])  # before the commit: see the risk query's notes
    return report_out(view)


@router.post("/reports/{report_id}/notice", response_model=ReportOut, responses=problems(404, 409))
async def record_notice(
    report_id: ReportId,
    body: NoticeIn,
    principal: Reporter,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ReportOut:
    """Record when the buyer was notified (art. 15): the report counts from then on."""
    view = await lifecycle.record_notice(
        session,
        operation(runtime, principal),
        principal,
        report_id,
        body.notified_at,
        policy=runtime.policy,
    )
    runtime.risk.changing([view.subject])
    return report_out(view)
