"""The pre-refund risk query: one fast call before each automatic refund.

Both routes call ``ledger.scoring.service.RiskQueries`` (``runtime.risk``), which scores,
writes the audit event and returns its id; refusals of unreadable queries are recorded
there too. ``POST /v1/risk/query`` is a ``DirectRoute`` (api/direct.py): declared here
like any route, served without FastAPI's per-request dependency resolution.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from json.encoder import encode_basestring
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
from ledger.scoring import service
from ledger.scoring.service import ReportSource

router = APIRouter(prefix="/v1/risk", tags=["risk"])

RiskReader = Annotated[ClientPrincipal, Depends(authorize_client(Permission.RISK_READ))]


def _json(model: BaseModel | bytes, headers: dict[str, str] | None = None) -> Response:
    # The answer is built from typed models already; validating it again is wasted work.
    body = model if isinstance(model, bytes) else model.model_dump_json()
    return Response(body, media_type="application/json", headers=headers)


# The JSON of the answer most queries share (nothing recorded, no protective marker), as
# a template per assessment and locale: only the subject and the audit event id differ.
_SUBJECT_MARK = "\x00subject\x00"
_EVENT_MARK = 7_146_288_049_155_312_641  # no log reaches this id
_SHARED_BODIES: dict[tuple[int, str], tuple[object, bytes, bytes, bytes]] = {}


def answer_json(answer: service.RiskAnswer) -> bytes:
    """``RiskAnswer.of(answer).model_dump_json()``, spliced from a template when the
    answer is the one most queries share (tests hold the two byte-equal)."""
    if answer.marker is not None or not service.is_shared(answer.assessment):
        return RiskAnswer.of(answer).model_dump_json().encode()
    key = (id(answer.assessment), answer.locale)
    held = _SHARED_BODIES.get(key)
    if held is None or held[0] is not answer.assessment:
        marked = dataclasses.replace(answer, subject=_SUBJECT_MARK, audit_event_id=_EVENT_MARK)
        text = RiskAnswer.of(marked).model_dump_json()
        head, rest = text.split(encode_basestring(_SUBJECT_MARK))
        middle, tail = rest.split(str(_EVENT_MARK))
        if len(_SHARED_BODIES) >= 64:
            _SHARED_BODIES.clear()
        held = (answer.assessment, head.encode(), middle.encode(), tail.encode())
        _SHARED_BODIES[key] = held
    _, head_bytes, middle_bytes, tail_bytes = held
    subject = encode_basestring(answer.subject).encode()
    return b"".join((head_bytes, subject, middle_bytes, b"%d" % answer.audit_event_id, tail_bytes))


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
    return _json(answer_json(answer), language_headers(locale))


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
