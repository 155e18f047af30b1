"""Sign-in, sign-out and the console's home page."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import client_address
from api.console.web import (
    CODE_PATH,
    COOKIE,
    LOCALE_COOKIE,
    PREFIX,
    SIGN_IN_COOKIE,
    ConsoleError,
    SignedIn,
    Viewer,
    check_origin,
    checked_form,
    read_as,
    refused_for_now,
    render,
    runtime_of,
    safe_next,
    say,
    secure_cookies,
    session_policy,
    try_again_in,
)
from api.routers.auth import check_one_time_code, check_sign_in
from ledger import i18n
from ledger.access.permissions import Permission
from ledger.audit.events import Actor
from ledger.console import dashboard
from ledger.console.sessions import (
    SECOND_FACTOR,
    complete_second_factor,
    end_session,
    open_session,
)
from ledger.context import Operation
from ledger.errors import InvalidCredentials, InvalidInput, RateLimited
from ledger.i18n import N_
from ledger.logs import request_id_var
from ledger.members import passwords, second_factor
from ledger.members import service as members
from ledger.webhooks import endpoints as webhook_endpoints

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _sign_in_page(
    request: Request, *, token: str, next_path: str, error: str | None, status: int
) -> HTMLResponse:
    runtime = runtime_of(request)
    response = render(
        request,
        "sign_in.html",
        None,
        status=status,
        sign_in_token=token,
        next_path=next_path,
        error=error,
        expired=request.query_params.get("expired") == "1",
    )
    response.set_cookie(
        SIGN_IN_COOKIE, token, max_age=900, path=PREFIX, httponly=True, samesite="strict",
        secure=secure_cookies(request, runtime),
    )  # fmt: skip
    return response


@router.get("/language")
async def switch_language(request: Request) -> Response:
    """The language switch: keep the choice in a cookie (a year), and go back."""
    chosen = request.query_params.get("to")
    response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    if chosen in i18n.LOCALES:
        response.set_cookie(
            LOCALE_COOKIE,
            chosen,
            max_age=365 * 24 * 3600,
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=secure_cookies(request, runtime_of(request)),
        )
    return response


@router.get("/sign-in")
async def sign_in_form(request: Request) -> HTMLResponse:
    return _sign_in_page(
        request,
        token=secrets.token_urlsafe(32),
        next_path=safe_next(request.query_params.get("next")),
        error=None,
        status=200,
    )


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    runtime = runtime_of(request)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    next_path = safe_next(form.get("next"))
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    check_origin(request, runtime)
    if not expected or not hmac.compare_digest(
        form.get("csrf_token", "").encode(), expected.encode()
    ):
        raise ConsoleError(403, N_("This sign-in form has expired; open the sign-in page again."))
    fresh = secrets.token_urlsafe(32)
    try:
        signed_in = await check_sign_in(
            runtime,
            form.get("username", "")[:64],
            form.get("password", "")[:1024],
            client_address(request),
        )
    except InvalidCredentials as exc:
        return _sign_in_page(
            request, token=fresh, next_path=next_path, error=say(exc.message), status=401
        )
    except RateLimited as exc:
        read_as(request)
        error = try_again_in(N_("Too many failed sign-ins: try again in %(seconds)s s."), exc)
        page = _sign_in_page(request, token=fresh, next_path=next_path, error=error, status=429)
        return refused_for_now(page, exc)
    user = signed_in.user
    op = Operation(
        actor=Actor.user(user.id), now=runtime.clock.now(), request_id=request_id_var.get()
    )
    policy = session_policy(runtime)
    async with runtime.sessionmaker() as session, session.begin():
        if user.second_factor:  # signed in only once the code is right too
            await members.store_rehash(session, signed_in)
            opened = await open_session(
                session, user, now=op.now, policy=policy, awaiting=SECOND_FACTOR
            )
        else:
            await members.record_sign_in(session, op, signed_in)
            opened = await open_session(session, user, now=op.now, policy=policy)
    target = f"{CODE_PATH}?next={quote(next_path)}" if user.second_factor else next_path
    return _with_session(request, RedirectResponse(target, status_code=303), opened.token)


def _with_session(request: Request, response: Response, token: str) -> Response:
    response.set_cookie(
        COOKIE, token, path=PREFIX, httponly=True, samesite="strict",
        secure=secure_cookies(request, runtime_of(request)),
    )  # fmt: skip
    response.delete_cookie(SIGN_IN_COOKIE, path=PREFIX)
    return response


@router.get("/sign-in/code")
async def code_form(request: Request, who: SignedIn) -> Response:
    """The second step of signing in: the authenticator's code or a recovery code."""
    if who.session.awaiting is None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return _code_page(request, who, next_path=safe_next(request.query_params.get("next")))


def _code_page(
    request: Request, who: Viewer, *, next_path: str, error: str | None = None, status: int = 200
) -> HTMLResponse:
    return render(
        request, "sign_in_code.html", who, status=status, next_path=next_path, error=error
    )


@router.post("/sign-in/code")
async def check_code(request: Request, who: SignedIn) -> Response:
    runtime = runtime_of(request)
    form = await checked_form(request, who)
    next_path = safe_next(form.get("next"))
    if who.session.awaiting is None:
        return RedirectResponse(next_path, status_code=303)
    user = who.session.user
    try:
        check = await check_one_time_code(
            runtime, user, form.get("code", ""), client_address(request)
        )
        op = who.op(runtime)
        async with runtime.sessionmaker() as session, session.begin():
            await second_factor.spend(session, op, user.id, check)
            signed_in = members.SignedInUser(user=user, rehashed_password=None)
            await members.record_sign_in(session, op, signed_in, via=check.via)
            opened = await complete_second_factor(
                session, who.session.token_hash, user, now=op.now, policy=session_policy(runtime)
            )
    except InvalidCredentials as exc:
        read_as(request)
        return _code_page(request, who, next_path=next_path, error=say(exc.message), status=401)
    except RateLimited as exc:
        read_as(request)
        error = try_again_in(N_("Too many failed sign-ins: try again in %(seconds)s s."), exc)
        return refused_for_now(_code_page(request, who, next_path=next_path, error=error), exc)
    return _with_session(request, RedirectResponse(next_path, status_code=303), opened.token)


@router.post("/sign-out")
async def sign_out(request: Request, who: SignedIn) -> Response:
    runtime = runtime_of(request)
    await checked_form(request, who)
    op = who.op(runtime)
    async with runtime.sessionmaker() as session, session.begin():
        await end_session(session, op, who.session.token_hash)
    response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


@router.get("")
async def home(request: Request, who: SignedIn) -> HTMLResponse:
    """The home page; for an auditor, the dashboard (ledger/console/dashboard.py)."""
    runtime = runtime_of(request)
    can_audit = Permission.AUDIT_READ in who.principal.permissions
    board = None
    names: dict[str, str] = {}
    can_operate = Permission.MEMBERS_MANAGE in who.principal.permissions
    turned_off: list[webhook_endpoints.TurnedOff] = []
    if can_operate:
        async with runtime.read_sessionmaker() as read:
            turned_off = await webhook_endpoints.turned_off(read)
            names = {str(m.id): m.display_name for m in await members.list_members(read)}
    if can_audit:
        async with runtime.read_sessionmaker() as read:
            board = (
                await dashboard.dashboard(
                    read, runtime.read_sessionmaker, who.recorder(runtime), who.principal
                )
            ).value
            names = {str(m.id): m.display_name for m in await members.list_members(read)}
    return render(
        request,
        "home.html",
        who,
        can_audit=can_audit,
        can_operate=can_operate,
        board=board,
        members=names,
        turned_off=turned_off,
    )


@router.get("/password")
async def password_page(request: Request, who: SignedIn) -> HTMLResponse:
    """Change one's own password; the only page while a password someone else chose is
    still in use."""
    return render(
        request,
        "password.html",
        who,
        next_path=safe_next(request.query_params.get("next")),
        error=None,
        changed=False,
    )


@router.post("/password")
async def change_password(request: Request, who: SignedIn) -> Response:
    runtime = runtime_of(request)
    form = await checked_form(request, who)
    next_path = safe_next(form.get("next"))
    new = form.get("new_password", "")[:1024]
    error: str | None = None
    if new != form.get("new_password_again", "")[:1024]:
        error = N_("the two new passwords differ: type the same one twice")
    else:
        try:
            async with runtime.sessionmaker() as session, session.begin():
                await passwords.change_password(
                    session,
                    runtime.hasher,
                    who.op(runtime),
                    user_id=who.session.user.id,
                    current=form.get("current_password", "")[:1024],
                    new=new,
                    keep_session=who.session.token_hash,
                )
        except (InvalidCredentials, InvalidInput) as exc:
            error = exc.message
    if error is not None:
        read_as(request)
        return render(
            request,
            "password.html",
            who,
            status=400,
            next_path=next_path,
            error=say(error),
            changed=False,
        )
    return RedirectResponse(next_path, status_code=303)
