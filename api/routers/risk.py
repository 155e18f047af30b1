"""The pre-refund risk query: one fast call before each automatic refund."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError

from api.auth import authorize, operation
from api.deps import ReadSessionDep, RuntimeDep
from api.routers.reports import client
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
from ledger.access.principals import Principal
from ledger.audit.tags import Outcome, Tag
from ledger.errors import InvalidInput
from ledger.runtime import Runtime
from ledger.scoring.score import Assessment, Band
from ledger.scoring.service import assess

router = APIRouter(prefix="/v1/risk", tags=["risk"])

RiskReader = Annotated[Principal, Depends(authorize(Permission.RISK_READ))]

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


async def _refuse(runtime: Runtime, principal: Principal, fields: list[str], why: str) -> None:
    event = operation(runtime, principal).event(
        Tag.RISK_QUERIED, outcome=Outcome.REFUSED, body={"reason": why, "fields": ",".join(fields)}
    )
    await runtime.audit.writer.write(event)


async def _query(
    runtime: Runtime, principal: Principal, session: ReadSessionDep, raw: dict[str, Any]
) -> RiskAnswer:
    """Validate, score, audit (durably), answer; every refusal is audited too."""
    try:
        body = RiskQueryIn.model_validate(raw)
    except ValidationError as exc:
        fields = _fields(exc)
        await _refuse(runtime, principal, fields, "invalid query")
        raise InvalidInput(
            "a risk query names subject, purpose (refund_review, dispute_review or "
            "account_review) and reference (your refund request id)",
            fields=fields,
        ) from None
    op = operation(runtime, principal)
    try:
        assessment = await assess(
            session,
            client(principal),
            body.subject,
            now=op.now,
            report_policy=runtime.policy,
            policy=await runtime.scoring_policies.get(session),
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


@router.post("/query", response_model=RiskAnswer)
async def risk_query(
    request: Request, principal: RiskReader, session: ReadSessionDep, runtime: RuntimeDep
) -> RiskAnswer:
    """Score a buyer before an automatic refund.

    Names a purpose and your refund request id, both audited; the query is recorded
    before it is answered. The answer recommends ``proceed`` or ``manual_review``, never
    a denial, explains itself, and never names the reporting platforms.
    """
    try:
        raw = await request.json()
    except ValueError:
        raw = None
    if not isinstance(raw, dict):
        await _refuse(runtime, principal, ["body"], "not a JSON object")
        raise InvalidInput("send a JSON object: subject, purpose, reference", fields=("body",))
    return await _query(runtime, principal, session, raw)


@router.post("/query:batch", response_model=RiskBatchOut)
async def risk_query_batch(
    request: Request, principal: RiskReader, session: ReadSessionDep, runtime: RuntimeDep
) -> RiskBatchOut:
    """Up to 100 queries in one call: one audit event (and one answer or error) each."""
    try:
        batch = RiskBatchIn.model_validate_json(await request.body())
    except ValidationError:
        await _refuse(runtime, principal, ["queries"], "invalid batch")
        raise InvalidInput(
            'the body is {"queries": [...]} with 1 to 100 queries', fields=("queries",)
        ) from None

    async def one(index: int, raw: dict[str, Any]) -> RiskBatchItem:
        try:
            answer = await _query(runtime, principal, session, raw)
        except InvalidInput as exc:
            errors = [{"field": f, "detail": exc.message} for f in exc.fields or ("query",)]
            return RiskBatchItem(index=index, status="rejected", errors=errors)
        return RiskBatchItem(index=index, status="answered", answer=answer)

    # One after another: the queries share the request's session, which cannot run two
    # statements at once. (Each event is still committed before its answer is built.)
    items = [await one(i, raw) for i, raw in enumerate(batch.queries)]
    return RiskBatchOut(items=items)
