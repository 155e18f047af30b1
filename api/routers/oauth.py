"""The OAuth 2.0 authorization server: token endpoint, JWKS and metadata."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.auth import client_address
from api.deps import RuntimeDep, SessionDep
from api.errors import OAuthError
from api.schemas.oauth import OAuthErrorResponse, TokenResponse
from ledger.access import refusals
from ledger.access.permissions import Scope, parse_scopes
from ledger.audit.events import Actor
from ledger.audit.reads import Recorder
from ledger.context import Operation
from ledger.errors import InvalidClient, InvalidInput
from ledger.logs import request_id_var
from ledger.members import service as members
from ledger.runtime import Runtime

router = APIRouter(tags=["oauth"])

MAX_TOKEN_REQUEST_BYTES = 4096
GRANT_TYPE = "client_credentials"

_FORM_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {
                            "type": "string",
                            "enum": [GRANT_TYPE],
                            "description": "always client_credentials",
                        },
                        "scope": {
                            "type": "string",
                            "description": "space-separated scopes; all the credential "
                            "holds when left out",
                        },
                        "client_id": {
                            "type": "string",
                            "description": "with client_secret_post; or use HTTP Basic",
                        },
                        "client_secret": {
                            "type": "string",
                            "description": "with client_secret_post; or use HTTP Basic",
                        },
                    },
                },
                "example": {"grant_type": GRANT_TYPE, "scope": "risk:read"},
            }
        },
    }
}


_LOCKED = {"account": "client id", "address": "address"}


@router.post(
    "/oauth/token",
    response_model=TokenResponse,
    responses={
        400: {"model": OAuthErrorResponse},
        401: {"model": OAuthErrorResponse},
        429: {"model": OAuthErrorResponse, "description": "too many failures: Retry-After"},
    },
    openapi_extra=_FORM_BODY,
)
async def issue_token(request: Request, runtime: RuntimeDep, session: SessionDep) -> JSONResponse:
    """Issue an access token (OAuth 2.0 client-credentials grant, RFC 6749 §4.4).

    Authenticate with HTTP Basic (``client_secret_basic``) or with ``client_id`` and
    ``client_secret`` in the form body (``client_secret_post``), not both.
    """
    params = await _form_params(request)
    grant_type = params.get("grant_type")
    if not grant_type:
        raise OAuthError("invalid_request", "the grant_type parameter is required")
    if grant_type != GRANT_TYPE:
        raise OAuthError(
            "unsupported_grant_type", f"only grant_type={GRANT_TYPE} is supported here"
        )
    client_id, client_secret = _client_credentials(request, params)
    address = client_address(request)
    # Three steps so that argon2id (~100 ms) runs with no transaction or connection
    # held: read the credential, check the secret, then record its use briefly. Past
    # too many failures for this client id or this address, no secret is checked at
    # all, so a flood of guesses costs the ledger no argon2 work.
    lockout = await runtime.token_guard.check(client_id, address)
    async with runtime.read_sessionmaker() as read:
        credential = await members.find_client_credential(read, client_id)
    try:
        if lockout is not None:
            runtime.metrics.lockouts.labels("token", lockout.scope).inc()
            raise OAuthError(  # noqa: TRY301  (audited below, like every refusal)
                "slow_down",
                f"too many failed attempts for this {_LOCKED[lockout.scope]}; "
                f"try again in {lockout.retry_after} s",
                status=429,
                headers={"Retry-After": str(lockout.retry_after)},
            )
        try:
            client = await members.check_client_secret(runtime.hasher, credential, client_secret)
        except InvalidClient as exc:
            await runtime.token_guard.failed(client_id, address)
            raise OAuthError("invalid_client", exc.message, status=401) from None
        scopes = _granted_scopes(params.get("scope"), client.scopes)
    except OAuthError as refusal:
        await _audit_refusal(runtime, credential, refusal)
        raise
    await runtime.token_guard.succeeded(client_id)
    issued = runtime.issuer.issue(
        client_id=client.client_id, member_id=client.member_id, scopes=scopes
    )
    op = Operation(
        actor=Actor.client(client.member_id, client.client_id),
        now=runtime.clock.now(),
        request_id=request_id_var.get(),
    )
    await members.record_token_issued(
        session, op, client, scope=issued.scope, token_id=issued.token_id
    )
    body = TokenResponse(
        access_token=issued.access_token, expires_in=issued.expires_in, scope=issued.scope
    )
    return JSONResponse(
        body.model_dump(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )


async def _form_params(request: Request) -> dict[str, str]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise OAuthError(
            "invalid_request", "send the parameters as application/x-www-form-urlencoded"
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_TOKEN_REQUEST_BYTES:
            raise OAuthError("invalid_request", "the token request is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=16)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the form body is not valid UTF-8 form data") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            # RFC 6749 §3.2: parameters MUST NOT be included more than once.
            raise OAuthError("invalid_request", f"the {key} parameter was sent more than once")
        params[key] = value
    return params


def _client_credentials(request: Request, params: dict[str, str]) -> tuple[str, str]:
    in_body = "client_id" in params or "client_secret" in params
    authorization = request.headers.get("authorization")
    if authorization is not None:
        if in_body:
            raise OAuthError(
                "invalid_request", "authenticate with HTTP Basic or with the form body, not both"
            )
        return _basic_credentials(authorization)
    if not in_body:
        raise OAuthError(
            "invalid_client",
            "client authentication is required: HTTP Basic, or client_id and client_secret",
            status=401,
        )
    client_id, client_secret = params.get("client_id", ""), params.get("client_secret", "")
    if not client_id or not client_secret:
        raise OAuthError("invalid_request", "send both client_id and client_secret")
    return client_id, client_secret


def _basic_credentials(authorization: str) -> tuple[str, str]:
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise OAuthError(
            "invalid_client", "use HTTP Basic authentication for the client", status=401
        )
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError(
            "invalid_client", "the Basic credentials are not valid base64", status=401
        ) from None
    client_id, sep, client_secret = decoded.partition(":")
    if not sep or not client_id or not client_secret:
        raise OAuthError(
            "invalid_client", "Basic credentials are client_id:client_secret", status=401
        )
    # RFC 6749 §2.3.1: both are form-urlencoded before Basic encoding.
    return unquote_plus(client_id), unquote_plus(client_secret)


async def _audit_refusal(
    runtime: Runtime, credential: members.ClientCredential | None, refusal: OAuthError
) -> None:
    """Refusals are recorded durably before they are answered. An unknown client id is
    not stored: it may be anything, including a mistyped secret."""
    if credential is None:
        actor, reason = Actor.system(), "unknown_client"
    else:
        actor, reason = (
            Actor.client(credential.member_id, credential.client_id),
            refusal.description,
        )
    op = Operation(actor=actor, now=runtime.clock.now(), request_id=request_id_var.get())
    await refusals.token_refused(
        Recorder(op, runtime.audit.writer), error=refusal.error, reason=reason
    )


def _granted_scopes(requested: str | None, held: frozenset[Scope]) -> frozenset[Scope]:
    if requested is None or not requested.strip():
        return held
    try:
        wanted = parse_scopes(requested)
    except InvalidInput as exc:
        raise OAuthError("invalid_scope", exc.message) from None
    missing = sorted(s.value for s in wanted - held)
    if missing:
        raise OAuthError(
            "invalid_scope", f"this client does not hold the scope(s): {', '.join(missing)}"
        )
    return wanted


@router.get("/.well-known/jwks.json")
async def jwks(runtime: RuntimeDep) -> JSONResponse:
    """The public keys that verify access tokens (RFC 7517 JWK Set)."""
    return JSONResponse(
        runtime.token_keys.current().jwks(), headers={"Cache-Control": "public, max-age=300"}
    )


@router.get("/.well-known/oauth-authorization-server")
async def authorization_server_metadata(runtime: RuntimeDep) -> dict[str, Any]:
    """Authorization server metadata (RFC 8414)."""
    base = runtime.settings.base_url
    return {
        "issuer": base,
        "token_endpoint": f"{base}/oauth/token",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "grant_types_supported": [GRANT_TYPE],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "token_endpoint_auth_signing_alg_values_supported": ["EdDSA"],
        "scopes_supported": [s.value for s in Scope],
        "response_types_supported": [],
    }
