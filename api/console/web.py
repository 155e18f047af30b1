"""What every console page shares: templates, the session cookie, CSRF, role checks.

- The session cookie (``ledger_console``) is HttpOnly, SameSite=Strict, limited to
  ``/console``, and Secure when the ledger is served over TLS.
- Every form carries the session's CSRF token, checked on every POST together with the
  request's ``Origin`` (when sent) against the ledger's own. The sign-in form, before
  there is a session, uses a random token in a short-lived cookie of its own.
- Every page names the permission it needs; auditors and operators hold different
  ones (ledger/access/permissions.py), checked here on every request. Refusals are
  audited and answered with an HTML page, not JSON.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.auth import PERMISSION_ATTR
from ledger.access import refusals
from ledger.access.permissions import Permission, Role
from ledger.access.principals import UserPrincipal
from ledger.audit.events import Actor
from ledger.audit.reads import Recorder
from ledger.console.sessions import Ended, LiveSession, SessionPolicy, load_session
from ledger.context import Operation
from ledger.logs import request_id_var
from ledger.runtime import Runtime

COOKIE = "ledger_console"
SIGN_IN_COOKIE = "ledger_console_sign_in"
PREFIX = "/console"

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


class ConsoleError(Exception):
    """Answered with the console's error page (status and a sentence to show)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SignInRequired(Exception):
    """No live session: off to the sign-in page, then back to ``next``."""

    def __init__(self, next_path: str, reason: str | None) -> None:
        super().__init__(reason or "")
        self.next_path = next_path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user on this request."""

    session: LiveSession
    principal: UserPrincipal

    @property
    def role(self) -> Role:
        return self.session.user.role

    def op(self, runtime: Runtime) -> Operation:
        return Operation(
            actor=Actor.user(self.session.user.id),
            now=runtime.clock.now(),
            request_id=request_id_var.get(),
        )

    def recorder(self, runtime: Runtime) -> Recorder:
        """What the core read functions take: this user's operation and the writer."""
        return Recorder(self.op(runtime), runtime.audit.writer)


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def session_policy(runtime: Runtime) -> SessionPolicy:
    s = runtime.settings
    return SessionPolicy(idle=s.console_idle_timeout, absolute=s.console_session_lifetime)


def secure_cookies(request: Request, runtime: Runtime) -> bool:
    return request.url.scheme == "https" or runtime.settings.base_url.startswith("https://")


async def viewer(request: Request, permission: Permission) -> Viewer:
    """The signed-in user if they hold ``permission``; else a redirect to the sign-in
    page or a 403 page."""
    runtime = runtime_of(request)
    token = request.cookies.get(COOKIE)
    found: LiveSession | Ended = Ended(reason=None, user_id=None)
    if token:
        async with runtime.sessionmaker() as session, session.begin():
            found = await load_session(
                session, token, now=runtime.clock.now(), policy=session_policy(runtime)
            )
    if isinstance(found, Ended):
        raise SignInRequired(request.url.path, found.reason)
    who = Viewer(
        session=found,
        principal=UserPrincipal(
            user_id=found.user.id, username=found.user.username, role=found.user.role
        ),
    )
    if permission not in who.principal.permissions:
        await refusals.console_refused(
            who.recorder(runtime),
            path=request.url.path,
            method=request.method,
            needs=permission.value,
        )
        raise ConsoleError(
            403, f"Your role ({who.role.value}) cannot do this: it needs {permission.value}."
        )
    return who


def needs(permission: Permission) -> Any:
    """A dependency: the viewer, holding ``permission`` (declared, like the API's, so
    the deny-by-default test sees it)."""

    async def dependency(request: Request) -> Viewer:
        return await viewer(request, permission)

    setattr(dependency, PERMISSION_ATTR, permission)
    return Depends(dependency)


def check_origin(request: Request, runtime: Runtime) -> None:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return  # older browsers and non-browser clients send none; the token decides
    ours = urlsplit(runtime.settings.base_url)
    theirs = urlsplit(origin)
    if theirs.netloc not in {request.url.netloc, ours.netloc}:
        raise ConsoleError(403, "This form was sent from another site and was refused.")


async def checked_form(request: Request, who: Viewer) -> dict[str, str]:
    """The POSTed form, if it carries this session's CSRF token and comes from here."""
    runtime = runtime_of(request)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    sent = form.pop("csrf_token", "")
    refusal: ConsoleError | None = None
    try:
        check_origin(request, runtime)
    except ConsoleError as exc:
        refusal = exc
    if refusal is None and not hmac.compare_digest(sent.encode(), who.session.csrf_token.encode()):
        refusal = ConsoleError(
            403, "This form has expired or was not sent from the console; reload the page."
        )
    if refusal is not None:
        await refusals.console_form_refused(who.recorder(runtime), path=request.url.path)
        raise refusal
    return form


def render(
    request: Request, template: str, who: Viewer | None, status: int = 200, **context: Any
) -> HTMLResponse:
    context.update(
        viewer=who,
        csrf_token=who.session.csrf_token if who else None,
        path=request.url.path,
    )
    response = templates.TemplateResponse(request, template, context, status_code=status)
    # Pages show audit data: never cached, never framed.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self'; script-src 'none'; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'"
    )
    response.headers["Referrer-Policy"] = "same-origin"
    return response


async def console_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleError)
    return render(request, "error.html", None, status=exc.status, message=exc.message)


async def sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    target = f"{PREFIX}/sign-in?next={quote(exc.next_path)}"
    if exc.reason in {"idle", "absolute"}:
        target += "&expired=1"
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response
