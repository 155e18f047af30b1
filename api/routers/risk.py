"""The pre-refund risk query: one fast call before each automatic refund."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from api.auth import authorize_client, operation
from api.deps import RuntimeDep
from api.errors import field_errors
from api.middleware import body_limit
from api.schemas import json_body, parse_body
from api.schemas.risk import (
    CountsOut,
    Explanation,
    ReasonOut,
    RiskAnswer,
    RiskBatchIn,
    RiskBatchItem,
    RiskBatchOut,
    RiskQueryIn,
)
from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal
from ledger.audit.tags import Outcome, Tag
from ledger.errors import InvalidInput
from ledger.runtime import Runtime
from ledger.scoring.score import Assessment, Band
from ledger.scoring.service import ReportSource, SessionReports, assess

router = APIRouter(prefix="/v1/risk", tags=["risk"])

RiskReader = Annotated[ClientPrincipal, Depends(authorize_client(Permission.RISK_READ))]

DECISION = (
    "The refund ledger did not make this decision. It reports what member platforms "
    "confirmed; the platform you are dealing with decides, and a person reviews the case "
    "where the recommendation is a manual review."
)
RIGHTS = (
    "You may ask this platform for your file in the ledger (every report held on you, "
    "who filed it and who looked you up), add a statement to any report, and dispute "
    "any report; a disputed report that is not answered within 20 days stops counting."
)


def _summary(a: Assessment) -> str:
    if a.band is Band.NONE:
        return "No confirmed refund abuse is recorded for this buyer."
    return (
        f"{a.counts.active_reports} confirmed case(s) from {a.counts.distinct_members} "
        f"platform(s) are recorded; risk is {a.band.value}."
    )


def _answer(subject: str, a: Assessment, event_id: int) -> RiskAnswer:
    return RiskAnswer(
        subject=subject,
        score=a.score,
        band=a.band.value,
        recommendation=a.recommendation.value,
        reasons=[
            ReasonOut(code=r.code, text=r.text, contribution=r.contribution) for r in a.reasons
        ],
        counts=CountsOut.model_validate(a.counts, from_attributes=True),
        policy_version=a.policy_version,
        explanation=Explanation(summary=_summary(a), decision=DECISION, your_rights=RIGHTS),
        audit_event_id=event_id,
    )


def _fields(exc: ValidationError) -> list[str]:
    return [".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()]


async def _refuse(
    runtime: Runtime, principal: ClientPrincipal, fields: list[str], why: str
) -> None:
    event = operation(runtime, principal).event(
        Tag.RISK_QUERIED, outcome=Outcome.REFUSED, body={"reason": why, "fields": ",".join(fields)}
    )
    await runtime.audit.writer.write(event)


async def _query(
    runtime: Runtime, principal: ClientPrincipal, source: ReportSource, body: RiskQueryIn
) -> RiskAnswer:
    """Score, audit (durably), answer; a refusal is audited too."""
    op = operation(runtime, principal)
    try:
        assessment = await assess(
            source,
            principal,
            body.subject,
            now=op.now,
            report_policy=runtime.policy,
            policy=await runtime.scoring_policies.get(runtime.read_sessionmaker),
        )
    except InvalidInput as exc:
        await _refuse(runtime, principal, list(exc.fields), "invalid subject")
        raise
    event_id = await runtime.audit.writer.write(
        op.event(
            Tag.RISK_QUERIED,
            subject=body.subject,
            purpose=body.purpose.value,
            reference=body.reference,
            body={
                "score": assessment.score,
                "band": assessment.band.value,
                "policy_version": assessment.policy_version,
            },
        )
    )
    return _answer(body.subject, assessment, event_id)


async def _refused(
    runtime: Runtime, principal: ClientPrincipal, exc: RequestValidationError
) -> RequestValidationError:
    """Audit the refusal of a query that could not be read; the error to raise."""
    fields = [f["field"] for f in field_errors(exc.errors())]
    await _refuse(runtime, principal, fields, "invalid query")
    return exc


async def _validated(runtime: Runtime, principal: ClientPrincipal, raw: object) -> RiskQueryIn:
    """One query of a batch, or an audited refusal that names its fields."""
    try:
        return RiskQueryIn.model_validate(raw)
    except ValidationError as exc:
        raise await _refused(
            runtime, principal, RequestValidationError(exc.errors(include_input=False))
        ) from None


@asynccontextmanager
async def _reports(runtime: Runtime) -> AsyncIterator[ReportSource]:
    """PostgreSQL's hot read where there is one; otherwise a read session."""
    if runtime.risk_reports is not None:
        yield runtime.risk_reports
        return
    async with runtime.read_sessionmaker() as session:
        yield SessionReports(session)


def _json(model: BaseModel) -> Response:
    # The answer is built from typed models already; validating it again is wasted work.
    return Response(model.model_dump_json(), media_type="application/json")


async def answer_query(runtime: Runtime, principal: ClientPrincipal, payload: bytes) -> Response:
    """The whole query, from the request body to the response (shared by the route below
    and by api/hot.py, which serves it without FastAPI's routing and dependency layers)."""
    try:
        body = parse_body(RiskQueryIn, payload)
    except RequestValidationError as exc:
        raise await _refused(runtime, principal, exc) from None
    async with _reports(runtime) as source:
        return _json(await _query(runtime, principal, source, body))


@router.post("/query", response_model=RiskAnswer, openapi_extra=json_body(RiskQueryIn))
async def risk_query(request: Request, principal: RiskReader, runtime: RuntimeDep) -> Response:
    """Score a buyer before an automatic refund.

    Names a purpose and your refund request id, both audited; the query is recorded
    before it is answered. The answer recommends ``proceed`` or ``manual_review``, never
    a denial, explains itself, and never names the reporting platforms.
    """
    return await answer_query(runtime, principal, await request.body())


@router.post(
    "/query:batch",
    response_model=RiskBatchOut,
    openapi_extra=json_body(RiskBatchIn) | body_limit(256 * 1024),  # 100 queries
)
async def risk_query_batch(
    request: Request, principal: RiskReader, runtime: RuntimeDep
) -> Response:
    """Up to 100 queries in one call: one audit event (and one answer or error) each."""
    try:
        batch = parse_body(RiskBatchIn, await request.body())
    except RequestValidationError as exc:
        raise await _refused(runtime, principal, exc) from None

    async def one(source: ReportSource, index: int, raw: dict[str, Any]) -> RiskBatchItem:
        try:
            answer = await _query(
                runtime, principal, source, await _validated(runtime, principal, raw)
            )
        except RequestValidationError as exc:
            errors = field_errors(exc.errors())
            return RiskBatchItem(index=index, status="rejected", errors=errors)
        except InvalidInput as exc:
            errors = [{"field": f, "detail": exc.message} for f in exc.fields or ("query",)]
            return RiskBatchItem(index=index, status="rejected", errors=errors)
        return RiskBatchItem(index=index, status="answered", answer=answer)

    # One after another: a read session cannot run two statements at once. (Each event
    # is still committed before its answer is built.)
    async with _reports(runtime) as source:
        items = [await one(source, i, raw) for i, raw in enumerate(batch.queries)]
    return _json(RiskBatchOut(items=items))
