"""Sign-in for console users (auditors, operators) to use the API."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import RuntimeDep, SessionDep
from api.schemas.auth import SignIn, UserToken
from ledger.audit.events import Actor
from ledger.audit.tags import Outcome, Tag
from ledger.context import Operation
from ledger.errors import InvalidCredentials
from ledger.logs import request_id_var
from ledger.members import service as members

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post("/token", response_model=UserToken, responses={401: {}})
async def sign_in(body: SignIn, runtime: RuntimeDep, session: SessionDep) -> JSONResponse:
    """Exchange a console user's username and password for a short-lived access token.

    The token carries the user's role (``auditor`` or ``operator``), not scopes. As with
    client secrets, the password is checked with nothing held, and every sign-in and
    every refusal is audited.
    """
    async with runtime.read_sessionmaker() as read:
        credential = await members.find_user_credential(read, body.username)
    try:
        signed_in = await members.check_user_password(runtime.hasher, credential, body.password)
    except InvalidCredentials as exc:
        actor = Actor.system() if credential is None else Actor.user(credential[0].id)
        reason = "unknown_user" if credential is None else exc.message
        op = Operation(actor=actor, now=runtime.clock.now(), request_id=request_id_var.get())
        await runtime.audit.writer.write(
            op.event(Tag.USER_SIGN_IN_REFUSED, outcome=Outcome.REFUSED, body={"reason": reason})
        )
        raise
    user = signed_in.user
    op = Operation(
        actor=Actor.user(user.id), now=runtime.clock.now(), request_id=request_id_var.get()
    )
    await members.record_sign_in(session, op, signed_in)
    issued = runtime.issuer.issue_for_user(user_id=user.id, role=user.role)
    token = UserToken(
        access_token=issued.access_token, expires_in=issued.expires_in, role=user.role.value
    )
    return JSONResponse(token.model_dump(), headers={"Cache-Control": "no-store"})
