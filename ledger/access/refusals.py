"""Refusals of access, recorded durably before they are answered (PIPL art. 51:
controls over who may read what, and evidence that they held).

The web layer decides that a request is refused (no token, a revoked client, a missing
permission, a console form from another site); these functions record it. What is
recorded is who asked, for what, and why it was refused; never a secret, a token or an
unknown client id as typed (it may be anything, a mistyped secret included).
"""

from __future__ import annotations

from ledger.audit.reads import Recorder
from ledger.audit.tags import Tag


async def request_refused(rec: Recorder, *, method: str, route: str, reason: str) -> int:
    """An API request by a known caller, refused (revoked, suspended, no permission)."""
    return await rec.refused(Tag.REQUEST_REFUSED, method=method, route=route, reason=reason)


async def token_refused(rec: Recorder, *, error: str, reason: str) -> int:
    """A token request refused (OAuth error code and why; ``unknown_client`` for an id
    that names no client)."""
    return await rec.refused(Tag.TOKEN_REFUSED, error=error, reason=reason)


async def sign_in_refused(rec: Recorder, *, reason: str) -> int:
    """A user's sign-in refused (wrong password, unknown user, locked account or address)."""
    return await rec.refused(Tag.USER_SIGN_IN_REFUSED, reason=reason)


async def console_refused(rec: Recorder, *, path: str, method: str, needs: str) -> int:
    """A console page or action the signed-in user's role does not allow."""
    return await rec.refused(Tag.CONSOLE_REFUSED, path=path, method=method, needs=needs)


async def console_form_refused(rec: Recorder, *, path: str) -> int:
    """A console form without this session's CSRF token, or sent from another site."""
    return await rec.refused(Tag.CONSOLE_REFUSED, path=path, reason="csrf")
