"""Pseudonym evaluation (RFC 9497 VOPRF) and the published key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from api.auth import authorize_client, recorder
from api.deps import RuntimeDep
from api.errors import rate_limit_headers
from api.openapi import problems
from api.schemas.pseudonyms import EvaluateIn, EvaluateOut, PseudonymKeyOut
from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal
from ledger.pseudonyms.keys import SUITE_NAME
from ledger.pseudonyms.service import b64url_encode, evaluate_for

router = APIRouter(tags=["pseudonyms"])

Evaluator = Annotated[ClientPrincipal, Depends(authorize_client(Permission.PSEUDONYMS_EVALUATE))]

KEY_PATH = "/.well-known/refund-ledger/pseudonym-key"


@router.post(
    "/v1/pseudonyms:evaluate",
    response_model=EvaluateOut,
    responses=problems(429),
)
async def evaluate_pseudonyms(
    body: EvaluateIn, principal: Evaluator, runtime: RuntimeDep
) -> JSONResponse:
    """Evaluate up to 100 blinded elements with the ledger's key, with one proof.

    The SDK's ``pseudonymize()`` does the whole exchange. Each element counts against
    your member's evaluation limit (``RateLimit`` headers on every answer;
    ``Retry-After`` on 429), and the call is audited as a count, never the elements.
    """
    read = await evaluate_for(
        recorder(runtime, principal),
        principal,
        body.blinded_elements,
        key=runtime.pseudonym_key,
        limiter=runtime.evaluation_limiter,
    )
    result = read.value.evaluation
    answer = EvaluateOut(
        suite=SUITE_NAME,
        key_id=result.key_id,
        evaluated_elements=[b64url_encode(e) for e in result.evaluated],
        proof=b64url_encode(result.proof),
    )
    return JSONResponse(answer.model_dump(), headers=rate_limit_headers(read.value.quota))


@router.get(KEY_PATH, response_model=PseudonymKeyOut)
async def pseudonym_key(runtime: RuntimeDep) -> JSONResponse:
    """The ledger's VOPRF public key and key id: SDKs verify every evaluation against it
    (pin it, or fetch it over TLS from the ledger you trust)."""
    return JSONResponse(
        runtime.pseudonym_key.published(), headers={"Cache-Control": "public, max-age=3600"}
    )
