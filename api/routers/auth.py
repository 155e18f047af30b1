"""Sign-in for console users (auditors, operators) to use the API."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.auth import client_address
from api.deps import RuntimeDep, SessionDep
from api.openapi import problems
from api.schemas.auth import SignIn, UserToken
from ledger.access import refusals
from ledger.audit.events import Actor
from ledger.audit.reads import Recorder
from ledger.context import Operation
from ledger.errors import InvalidCredentials, PasswordChangeRequired, RateLimited
from ledger.logs import request_id_var
from ledger.members import service as members
from ledger.runtime import Runtime

router = APIRouter(prefix="/v1/auth", tags=["auth"])


async def check_sign_in(
    runtime: Runtime, username: str, password: str, address: str
) -> members.SignedInUser:
    """The user, if the password is right and neither the account nor the address is
    locked; every refusal is audited. Shared by the API and the console."""
    lockout = await runtime.sign_in_guard.check(username, address)
    async with runtime.read_sessionmaker() as read:
        credential = await members.find_user_credential(read, username)
    actor = Actor.system() if credential is None else Actor.user(credential[0].id)
    op = Operation(actor=actor, now=runtime.clock.now(), request_id=request_id_var.get())
    rec = Recorder(op, runtime.audit.writer)
    if lockout is not None:
        await refusals.sign_in_refused(rec, reason=f"{lockout.scope} locked")
        raise RateLimited(
            f"too many failed sign-ins for this {lockout.scope}; try again in "
            f"{lockout.retry_after} s",
            retry_after=lockout.retry_after,
        )
    try:
        signed_in = await members.check_user_password(runtime.hasher, credential, password)
    except InvalidCredentials as exc:
        await runtime.sign_in_guard.failed(username, address)
        reason = "unknown_user" if credential is None else exc.message
        await refusals.sign_in_refused(rec, reason=reason)
        raise
    await runtime.sign_in_guard.succeeded(username)
    return signed_in


@router.post("/token", response_model=UserToken, responses=problems(401, 403, 429))
async def sign_in(
    body: SignIn, request: Request, runtime: RuntimeDep, session: SessionDep
) -> JSONResponse:
    """Exchange a console user's username and password for a short-lived access token.

    The token carries the user's role (``auditor`` or ``operator``), not scopes. As with
    client secrets, the password is checked with nothing held, and every sign-in and
    every refusal is audited. Repeated failures lock the account for a while (429 with
    ``Retry-After``). A password an operator set is good only for choosing one's own in
    the console: 403 ``password-change-required`` until then.
    """
    signed_in = await check_sign_in(runtime, body.username, body.password, client_address(request))
    user = signed_in.user
    if user.must_change_password:
        op = Operation(
            actor=Actor.user(user.id), now=runtime.clock.now(), request_id=request_id_var.get()
        )
        await refusals.sign_in_refused(Recorder(op, runtime.audit.writer), reason="password_change")
        raise PasswordChangeRequired(
            "this password was set by an operator: choose your own in the console "
            "(/console/password) first"
        )
    op = Operation(
        actor=Actor.user(user.id), now=runtime.clock.now(), request_id=request_id_var.get()
    )
    await members.record_sign_in(session, op, signed_in)
    issued = runtime.issuer.issue_for_user(user_id=user.id, role=user.role)
    token = UserToken(
        access_token=issued.access_token, expires_in=issued.expires_in, role=user.role.value
    )
    return JSONResponse(token.model_dump(), headers={"Cache-Control": "no-store"})
