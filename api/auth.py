"""Bearer-token authentication and the permission check every protected route declares.

A route is protected by depending on ``authorize(Permission.X)``; the dependency it
returns carries the permission in ``__ledger_permission__`` so that a test can walk
``app.routes`` and fail on any route that neither declares one nor is on the public
allowlist (deny by default).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from fastapi import Request

from api.deps import ReadSessionDep, RuntimeDep
from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal, require
from ledger.errors import AuthenticationFailed, InvalidInput
from ledger.members.service import ensure_client_active

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_BEARER = re.compile(r"^Bearer +([A-Za-z0-9\-._~+/]+=*)$", re.IGNORECASE)
MAX_TOKEN_LENGTH = 4096

PERMISSION_ATTR = "__ledger_permission__"


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
    match = _BEARER.match(headers[0])
    if match is None or len(match.group(1)) > MAX_TOKEN_LENGTH:
        raise InvalidInput(
            "the Authorization header must be 'Bearer <token>', with the token as issued",
            fields=("authorization",),
        )
    return match.group(1)


def authorize(permission: Permission) -> Callable[..., Awaitable[ClientPrincipal]]:
    """A dependency that authenticates the caller and checks ``permission``."""

    async def dependency(
        request: Request, runtime: RuntimeDep, session: ReadSessionDep
    ) -> ClientPrincipal:
        claims = runtime.verifier.verify(bearer_token(request))
        await ensure_client_active(session, client_id=claims.client_id, member_id=claims.member_id)
        principal = ClientPrincipal(
            member_id=claims.member_id,
            client_id=claims.client_id,
            scopes=claims.scopes,
            token_id=claims.token_id,
            token_expires_at=claims.expires_at,
        )
        require(principal, permission)
        request.state.principal = principal
        return principal

    setattr(dependency, PERMISSION_ATTR, permission)
    dependency.__name__ = f"authorize_{permission.name.lower()}"
    return dependency
