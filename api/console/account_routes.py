"""The signed-in user's own account: the password and the second factor.

Every change to the second factor asks for a current code first (setting one up asks
for a code from the new secret), so a session left open is not enough to take the
account over; wrong codes count against the account like wrong passwords.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import client_address
from api.console.web import (
    PREFIX,
    SECOND_FACTOR_PATH,
    SignedIn,
    Viewer,
    checked_form,
    read_as,
    refused_for_now,
    render,
    runtime_of,
    safe_next,
    say,
    try_again_in,
)
from api.routers.auth import check_one_time_code
from ledger.errors import Conflict, InvalidCredentials, InvalidInput, RateLimited
from ledger.i18n import N_
from ledger.members import second_factor

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/account")
async def account(request: Request, who: SignedIn) -> HTMLResponse:
    """The user's own account: their password, their second factor."""
    runtime = runtime_of(request)
    async with runtime.read_sessionmaker() as read:
        current = await second_factor.state(read, who.session.user.id)
    return render(
        request,
        "account.html",
        who,
        factor=current,
        required=who.role in runtime.settings.roles_needing_second_factor,
    )


async def _page(
    request: Request,
    who: Viewer,
    *,
    next_path: str,
    codes: list[str] | None = None,
    error: str | None = None,
    status: int = 200,
    fresh: bool = False,
) -> HTMLResponse:
    """The second-factor page: setting one up (with the secret as QR code and text), or
    the one in use and what can be done with it; ``codes``: new recovery codes, shown
    this once."""
    runtime = runtime_of(request)
    user_id = who.session.user.id
    async with runtime.sessionmaker() as session, session.begin():
        current = await second_factor.state(session, user_id)
        setting_up = None
        if codes is None and (fresh or current.pending or not current.enabled):
            setting_up = await second_factor.enrolment(
                session, runtime.second_factor_key, user_id, fresh=fresh
            )
    return render(
        request,
        "second_factor.html",
        who,
        status=status,
        factor=current,
        setting_up=setting_up,
        codes=codes,
        error=error,
        next_path=next_path,
        required=who.role in runtime.settings.roles_needing_second_factor,
    )


@router.get("/second-factor")
async def second_factor_page(request: Request, who: SignedIn) -> HTMLResponse:
    return await _page(request, who, next_path=safe_next(request.query_params.get("next")))


@router.post("/second-factor")
async def confirm(request: Request, who: SignedIn) -> Response:
    """Setting up: a code from the new secret makes it the user's; recovery codes follow."""
    runtime = runtime_of(request)
    form = await checked_form(request, who)
    next_path = safe_next(form.get("next"))
    try:
        async with runtime.sessionmaker() as session, session.begin():
            codes = await second_factor.confirm_enrolment(
                session,
                runtime.hasher,
                runtime.second_factor_key,
                who.op(runtime),
                user_id=who.session.user.id,
                code=form.get("code", "")[:64],
            )
    except (InvalidCredentials, Conflict) as exc:
        read_as(request)
        return await _page(request, who, next_path=next_path, error=say(exc.message), status=400)
    return await _page(request, who, next_path=next_path, codes=codes)


async def _with_current_code(
    request: Request, who: Viewer, form: dict[str, str]
) -> second_factor.CodeCheck | HTMLResponse:
    """The current code, checked and used up; or the page again with why not."""
    runtime = runtime_of(request)
    next_path = safe_next(form.get("next"))
    try:
        check = await check_one_time_code(
            runtime, who.session.user, form.get("code", ""), client_address(request)
        )
        async with runtime.sessionmaker() as session, session.begin():
            await second_factor.spend(session, who.op(runtime), who.session.user.id, check)
    except InvalidCredentials as exc:
        read_as(request)
        return await _page(request, who, next_path=next_path, error=say(exc.message), status=400)
    except RateLimited as exc:
        read_as(request)
        error = try_again_in(N_("Too many wrong codes: try again in %(seconds)s s."), exc)
        return refused_for_now(await _page(request, who, next_path=next_path, error=error), exc)
    return check


@router.post("/second-factor/recovery-codes")
async def new_recovery_codes(request: Request, who: SignedIn) -> Response:
    runtime = runtime_of(request)
    form = await checked_form(request, who)
    checked = await _with_current_code(request, who, form)
    if isinstance(checked, HTMLResponse):
        return checked
    async with runtime.sessionmaker() as session, session.begin():
        codes = await second_factor.replace_recovery_codes(
            session, runtime.hasher, who.op(runtime), user_id=who.session.user.id
        )
    return await _page(request, who, next_path=safe_next(form.get("next")), codes=codes)


@router.post("/second-factor/renew")
async def renew(request: Request, who: SignedIn) -> Response:
    """Move to another phone: after a current code, a new secret to set up; the one in
    use keeps working until the new one is confirmed."""
    form = await checked_form(request, who)
    checked = await _with_current_code(request, who, form)
    if isinstance(checked, HTMLResponse):
        return checked
    return await _page(request, who, next_path=safe_next(form.get("next")), fresh=True)


@router.post("/second-factor/cancel")
async def cancel(request: Request, who: SignedIn) -> Response:
    """Keep the second factor in use; forget the one being set up."""
    runtime = runtime_of(request)
    await checked_form(request, who)
    async with runtime.sessionmaker() as session, session.begin():
        await second_factor.forget_pending(session, who.session.user.id)
    return RedirectResponse(f"{PREFIX}/account", status_code=303)


@router.post("/second-factor/off")
async def turn_off(request: Request, who: SignedIn) -> Response:
    runtime = runtime_of(request)
    form = await checked_form(request, who)
    checked = await _with_current_code(request, who, form)
    if isinstance(checked, HTMLResponse):
        return checked
    try:
        async with runtime.sessionmaker() as session, session.begin():
            await second_factor.turn_off(
                session,
                who.op(runtime),
                user_id=who.session.user.id,
                roles=runtime.settings.roles_needing_second_factor,
            )
    except InvalidInput as exc:
        read_as(request)
        return await _page(
            request, who, next_path=SECOND_FACTOR_PATH, error=say(exc.message), status=400
        )
    return RedirectResponse(f"{PREFIX}/account", status_code=303)
