"""Bearer-token authentication and the permission check every protected route declares.

A route is protected by depending on ``authorize(Permission.X)``; the dependency it
returns carries the permission in ``__ledger_permission__`` so that a test can walk
``app.routes`` and fail on any route that neither declares one nor is on the public
allowlist (deny by default). Refusals of a known caller are audited before they are
answered.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

from fastapi import Request

from api.deps import RuntimeDep
from ledger.access import refusals
from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal, Principal, UserPrincipal, require
from ledger.access.tokens import TokenClaims
from ledger.audit.events import Actor
from ledger.audit.reads import Recorder
from ledger.context import Operation
from ledger.errors import AuthenticationFailed, InvalidInput, InvalidToken, PermissionDenied
from ledger.logs import request_id_var
from ledger.members.service import (
    CLIENT_REFUSALS,
    ClientState,
    client_state,
    ensure_user_active,
)
from ledger.runtime import Runtime

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 §2.1
MAX_TOKEN_LENGTH = 4096

PERMISSION_ATTR = "__ledger_permission__"
CLIENT_ONLY_ATTR = "__ledger_client_only__"  # member clients only (the OpenAPI security)


class MissingCredentials(AuthenticationFailed):
    """No Authorization header at all (RFC 6750 §3.1: the challenge carries no error)."""


def bearer_token(request: Request) -> str:
    headers = request.headers.getlist("authorization")
    if not headers:
        raise MissingCredentials(
            "this endpoint needs an access token: send 'Authorization: Bearer <token>' "
            "with a token from POST /oauth/token"
        )
    if len(headers) > 1:
        raise InvalidInput("send exactly one Authorization header", fields=("authorization",))
    # The scheme is case-insensitive (RFC 9110 §11.1), the token is not: one regex with
    # IGNORECASE over the whole header cost 4 µs a request, most of it on the token.
    scheme, _, rest = headers[0].partition(" ")
    token = rest.lstrip(" ")
    if (
        scheme.lower() != "bearer"
        or len(token) > MAX_TOKEN_LENGTH
        or _TOKEN68.fullmatch(token) is None
    ):
        raise InvalidInput(
            "the Authorization header must be 'Bearer <token>', with the token as issued",
            fields=("authorization",),
        )
    return token


def actor_of(principal: Principal) -> Actor:
    if isinstance(principal, ClientPrincipal):
        return Actor.client(principal.member_id, principal.client_id)
    return Actor.user(principal.user_id)


def operation(runtime: Runtime, principal: Principal) -> Operation:
    """The operation a request performs, for its audit events."""
    return Operation(
        actor=actor_of(principal), now=runtime.clock.now(), request_id=request_id_var.get()
    )


def recorder(runtime: Runtime, principal: Principal) -> Recorder:
    """The operation a request performs, and where the reads it makes are recorded: what
    every core read function takes (ledger/audit/reads.py)."""
    return Recorder(operation(runtime, principal), runtime.audit.writer)


async def _audit_refusal(runtime: Runtime, actor: Actor, request: Request, why: str) -> None:
    op = Operation(actor=actor, now=runtime.clock.now(), request_id=request_id_var.get())
    await refusals.request_refused(
        Recorder(op, runtime.audit.writer),
        method=request.method,
        route=_route(request),
        reason=why,
    )


def _route(request: Request) -> str:
    path = getattr(request.scope.get("route"), "path", None)
    return path if isinstance(path, str) else "<unmatched>"


async def _principal(claims: TokenClaims, runtime: Runtime, request: Request) -> Principal:
    if claims.user_id is not None and claims.role is not None:
        return await _user(claims.user_id, runtime, request)
    client_id, member_id = claims.client_id, claims.member_id
    assert member_id is not None
    key = (client_id, member_id)
    cache = runtime.access_cache
    if not cache.is_active(key):
        generation = cache.generation
        state = await cache.read(key, lambda: _client_state(runtime, client_id, member_id))
        if state is not ClientState.ACTIVE:
            reason = CLIENT_REFUSALS[state]
            if state is not ClientState.UNKNOWN:  # a known client: revoked or suspended
                actor = Actor.client(member_id, client_id)
                await _audit_refusal(runtime, actor, request, reason)
            raise InvalidToken(reason)
        cache.remember(key, generation)
    return ClientPrincipal(
        member_id=member_id,
        client_id=client_id,
        scopes=claims.scopes,
        token_id=claims.token_id,
        token_expires_at=claims.expires_at,
    )


# A connection is borrowed for the one lookup and returned at once: a request never
# holds two (this one and its own session), which a full pool could not serve.


async def _client_state(runtime: Runtime, client_id: str, member_id: uuid.UUID) -> ClientState:
    async with runtime.read_sessionmaker() as session:
        return await client_state(session, client_id=client_id, member_id=member_id)


async def _user(user_id: uuid.UUID, runtime: Runtime, request: Request) -> UserPrincipal:
    async with runtime.read_sessionmaker() as session:
        try:
            user = await ensure_user_active(session, user_id)
        except InvalidToken as exc:
            await _audit_refusal(runtime, Actor.user(user_id), request, exc.message)
            raise
        return UserPrincipal(user_id=user.id, username=user.username, role=user.role)


async def authenticate(request: Request, runtime: Runtime, permission: Permission) -> Principal:
    """The caller, checked for ``permission``; refusals of a known caller are audited."""
    claims = runtime.verifier.verify(bearer_token(request))
    principal = await _principal(claims, runtime, request)
    try:
        require(principal, permission)
    except PermissionDenied as exc:
        await _audit_refusal(runtime, actor_of(principal), request, exc.message)
        raise
    request.state.principal = principal
    return principal


async def authenticate_client(
    request: Request, runtime: Runtime, permission: Permission
) -> ClientPrincipal:
    """The calling member client, checked for ``permission`` (a console user's token is
    refused, and the refusal audited, even where its role would hold the permission)."""
    principal = await authenticate(request, runtime, permission)
    if not isinstance(principal, ClientPrincipal):
        reason = "this operation is for member clients, with a token from POST /oauth/token"
        await _audit_refusal(runtime, actor_of(principal), request, reason)
        raise PermissionDenied(reason)
    return principal


def authorize_client(permission: Permission) -> Callable[..., Awaitable[ClientPrincipal]]:
    """A dependency that yields the calling member client, checked for ``permission``."""

    async def dependency(request: Request, runtime: RuntimeDep) -> ClientPrincipal:
        return await authenticate_client(request, runtime, permission)

    setattr(dependency, PERMISSION_ATTR, permission)
    setattr(dependency, CLIENT_ONLY_ATTR, True)
    dependency.__name__ = f"authorize_client_{permission.name.lower()}"
    return dependency


def authorize(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the caller and checks ``permission``."""

    async def dependency(request: Request, runtime: RuntimeDep) -> Principal:
        return await authenticate(request, runtime, permission)

    setattr(dependency, PERMISSION_ATTR, permission)
    dependency.__name__ = f"authorize_{permission.name.lower()}"
    return dependency


def client_address(request: Request) -> str:
    """The caller's address, as the server sees it (behind a proxy: as the server was
    told to trust it), for per-address limits."""
    return request.client.host if request.client is not None else "unknown"
