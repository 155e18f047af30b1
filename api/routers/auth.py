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
from ledger.errors import (
    InvalidCredentials,
    PasswordChangeRequired,
    RateLimited,
    SecondFactorRequired,
    SecondFactorSetupRequired,
)
from ledger.logs import request_id_var
from ledger.members import second_factor
from ledger.members import service as members
from ledger.members.service import UserView
from ledger.runtime import Runtime

router = APIRouter(prefix="/v1/auth", tags=["auth"])


def _recorder(runtime: Runtime, actor: Actor) -> Recorder:
    op = Operation(actor=actor, now=runtime.clock.now(), request_id=request_id_var.get())
    return Recorder(op, runtime.audit.writer)


async def _refuse_if_locked(runtime: Runtime, rec: Recorder, username: str, address: str) -> None:
    lockout = await runtime.sign_in_guard.check(username, address)
    if lockout is not None:
        runtime.metrics.lockouts.labels("sign_in", lockout.scope).inc()
        await refusals.sign_in_refused(rec, reason=f"{lockout.scope} locked")
        raise RateLimited(
            f"too many failed sign-ins for this {lockout.scope}; try again in "
            f"{lockout.retry_after} s",
            retry_after=lockout.retry_after,
            limit="sign_in",
        )


async def check_sign_in(
    runtime: Runtime, username: str, password: str, address: str
) -> members.SignedInUser:
    """The user, if the password is right and neither the account nor the address is
    locked; every refusal is audited. Shared by the API and the console. For a user
    with a second factor, the failure count is cleared only once the code is right too
    (``check_one_time_code``): a known password does not buy unlimited code guesses."""
    async with runtime.read_sessionmaker() as read:
        credential = await members.find_user_credential(read, username)
    actor = Actor.system() if credential is None else Actor.user(credential[0].id)
    rec = _recorder(runtime, actor)
    await _refuse_if_locked(runtime, rec, username, address)
    try:
        signed_in = await members.check_user_password(runtime.hasher, credential, password)
    except InvalidCredentials as exc:
        await runtime.sign_in_guard.failed(username, address)
        reason = "unknown_user" if credential is None else exc.message
        await refusals.sign_in_refused(rec, reason=reason)
        raise
    if not signed_in.user.second_factor:
        await runtime.sign_in_guard.succeeded(username)
    return signed_in


async def check_one_time_code(
    runtime: Runtime, user: UserView, code: str, address: str
) -> second_factor.CodeCheck:
    """The second step: ``code`` must be a right authenticator or recovery code of the
    user's. Wrong codes count against the account and the address like wrong passwords;
    every refusal is audited."""
    rec = _recorder(runtime, Actor.user(user.id))
    await _refuse_if_locked(runtime, rec, user.username, address)
    async with runtime.read_sessionmaker() as read:
        stored = await second_factor.stored_code(read, user_id=user.id, code=code[:64])
    try:  # with nothing held, as for passwords
        check = await second_factor.verify_code(
            runtime.hasher, runtime.second_factor_key, stored, now=rec.op.now
        )
    except InvalidCredentials:
        await runtime.sign_in_guard.failed(user.username, address)
        await refusals.sign_in_refused(rec, reason="wrong_one_time_code")
        raise
    await runtime.sign_in_guard.succeeded(user.username)
    return check


async def refuse_without_second_factor(runtime: Runtime, user: UserView) -> None:
    """A user whose role requires a second factor and who has none gets no token."""
    if user.role in runtime.settings.roles_needing_second_factor and not user.second_factor:
        await refusals.sign_in_refused(
            _recorder(runtime, Actor.user(user.id)), reason="second_factor_setup"
        )
        raise SecondFactorSetupRequired(
            "your role requires a second factor: set one up in the console "
            "(/console/second-factor) first"
        )


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

    A user with a second factor sends ``one_time_code`` too: the 6-digit code from the
    authenticator app, or an unused recovery code (401 ``second-factor-required``
    without it; wrong codes count like wrong passwords). A user whose role requires a
    second factor and who has none yet gets 403 ``second-factor-setup-required``.
    """
    address = client_address(request)
    signed_in = await check_sign_in(runtime, body.username, body.password, address)
    user = signed_in.user
    if user.must_change_password:
        await refusals.sign_in_refused(
            _recorder(runtime, Actor.user(user.id)), reason="password_change"
        )
        raise PasswordChangeRequired(
            "this password was set by an operator: choose your own in the console "
            "(/console/password) first"
        )
    check = None
    if user.second_factor:
        if not body.one_time_code:
            await refusals.sign_in_refused(
                _recorder(runtime, Actor.user(user.id)), reason="one_time_code_missing"
            )
            raise SecondFactorRequired(
                "this account has a second factor: send one_time_code, the 6-digit code "
                "from the authenticator app or an unused recovery code"
            )
        check = await check_one_time_code(runtime, user, body.one_time_code, address)
    else:
        await refuse_without_second_factor(runtime, user)
    op = Operation(
        actor=Actor.user(user.id), now=runtime.clock.now(), request_id=request_id_var.get()
    )
    if check is not None:
        await second_factor.spend(session, op, user.id, check)
    await members.record_sign_in(session, op, signed_in, via=check.via if check else None)
    issued = runtime.issuer.issue_for_user(user_id=user.id, role=user.role)
    token = UserToken(
        access_token=issued.access_token, expires_in=issued.expires_in, role=user.role.value
    )
    return JSONResponse(token.model_dump(), headers={"Cache-Control": "no-store"})
