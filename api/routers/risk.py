"""The pre-refund risk query: one fast call before each automatic refund.

Both routes call ``ledger.scoring.service.RiskQueries`` (``runtime.risk``), which scores,
writes the audit event and returns its id; refusals of unreadable queries are recorded
there too. ``POST /v1/risk/query`` is a ``DirectRoute`` (api/direct.py): declared here
like any route, served without FastAPI's per-request dependency resolution.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ValidationError

from api.auth import authorize_client, recorder
from api.deps import RuntimeDep
from api.direct import DirectRoute
from api.errors import field_errors
from api.locales import language_headers, locale_of
from api.middleware import body_limit
from api.schemas import json_body, parse_recorded
from api.schemas.risk import RiskAnswer, RiskBatchIn, RiskBatchItem, RiskBatchOut, RiskQueryIn
from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal
from ledger.audit.reads import Recorder
from ledger.errors import InvalidInput
from ledger.runtime import Runtime
from ledger.scoring.service import ReportSource

router = APIRouter(prefix="/v1/risk", tags=["risk"])

RiskReader = Annotated[ClientPrincipal, Depends(authorize_client(Permission.RISK_READ))]


def _json(model: BaseModel, headers: dict[str, str] | None = None) -> Response:
    # The answer is built from typed models already; validating it again is wasted work.
    return Response(model.model_dump_json(), media_type="application/json", headers=headers)


def _refusal(runtime: Runtime, rec: Recorder) -> Callable[[list[str]], Awaitable[int]]:
    return lambda fields: runtime.risk.refuse(rec, fields, "invalid query")


async def risk_query(request: Request, principal: RiskReader) -> Response:
    """Score a buyer before an automatic refund.

    Names a purpose and your refund request id, both audited; the query is recorded
    before it is answered. The answer recommends ``proceed`` or ``manual_review``, never
    a denial, explains itself, and never names the reporting platforms.
    """
    runtime: Runtime = request.app.state.runtime
    rec = recorder(runtime, principal)
    body = await parse_recorded(RiskQueryIn, await request.body(), _refusal(runtime, rec))
    locale = locale_of(request, body.locale)
    answer = await runtime.risk.answer(rec, principal, body.query(locale))
    return _json(RiskAnswer.of(answer), language_headers(locale))


def query_route() -> DirectRoute:
    """``POST /v1/risk/query``, for the app's own route table, ahead of every router."""
    return DirectRoute(
        "/v1/risk/query",
        risk_query,
        methods=["POST"],
        tags=["risk"],
        response_model=RiskAnswer,
        openapi_extra=json_body(RiskQueryIn),
    )


@router.post(
    "/query:batch",
    response_model=RiskBatchOut,
    openapi_extra=json_body(RiskBatchIn) | body_limit(256 * 1024),  # 100 queries
)
async def risk_query_batch(
    request: Request, principal: RiskReader, runtime: RuntimeDep
) -> Response:
    """Up to 100 queries in one call: one audit event (and one answer or error) each."""
    rec = recorder(runtime, principal)
    batch = await parse_recorded(RiskBatchIn, await request.body(), _refusal(runtime, rec))

    async def one(source: ReportSource, index: int, raw: dict[str, Any]) -> RiskBatchItem:
        try:
            body = RiskQueryIn.model_validate(raw)
        except ValidationError as exc:
            errors = field_errors(exc.errors(include_input=False))
            await runtime.risk.refuse(rec, [e["field"] for e in errors], "invalid query")
            return RiskBatchItem(index=index, status="rejected", errors=errors)
        try:
            query = body.query(locale_of(request, body.locale))
            answer = await runtime.risk.answer(rec, principal, query, source=source)
        except InvalidInput as exc:
            errors = [{"field": f, "detail": exc.message} for f in exc.fields or ("query",)]
            return RiskBatchItem(index=index, status="rejected", errors=errors)
        return RiskBatchItem(index=index, status="answered", answer=RiskAnswer.of(answer))

    # One after another: a read session cannot run two statements at once. (Each event
    # is still committed before its answer is built.)
    async with runtime.risk.reports() as source:
        items = [await one(source, i, raw) for i, raw in enumerate(batch.queries)]
    # Each answer is in its query's locale; the header says the request's own.
    return _json(RiskBatchOut(items=items), language_headers(locale_of(request, None)))
