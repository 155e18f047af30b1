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

import datetime as dt
import hmac
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from api.auth import PERMISSION_ATTR
from api.console.charts import daily_bars
from ledger import i18n
from ledger.access import refusals
from ledger.access.permissions import Permission, Role
from ledger.access.principals import UserPrincipal
from ledger.audit.events import Actor
from ledger.audit.glossary import (
    ACTORS,
    BASES,
    CATEGORIES,
    DELIVERY_STATES,
    GLOSSARY,
    MEMBER_STATUSES,
    OUTCOMES,
    REPORT_STATUSES,
    RESOLUTIONS,
    ROLES,
    SERIES,
)
from ledger.audit.reads import Recorder
from ledger.audit.tags import ActorType, Outcome, Tag
from ledger.console.sessions import Ended, LiveSession, SessionPolicy, load_session
from ledger.context import Operation
from ledger.errors import RateLimited
from ledger.i18n import N_
from ledger.logs import request_id_var
from ledger.runtime import Runtime

COOKIE = "ledger_console"
SIGN_IN_COOKIE = "ledger_console_sign_in"
PREFIX = "/console"

LOCALE_COOKIE = "ledger_locale"  # the language switch's choice, kept a year

templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
    )
)
# The reader's language and time zone, for this request's rendering (ledger/i18n).
_reading: ContextVar[tuple[str, str]] = ContextVar(
    "console_reading", default=(i18n.DEFAULT_LOCALE, "Asia/Shanghai")
)


def _gettext(message: str) -> str:
    return i18n.gettext(_reading.get()[0], message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return i18n.plural(_reading.get()[0], singular, plural, n)


def _moment(at: dt.datetime | str) -> dt.datetime:
    """Times come as datetimes, or as the audit log's ISO strings (…Z)."""
    return dt.datetime.fromisoformat(at) if isinstance(at, str) else at


def _when(at: dt.datetime | str | None) -> Markup | str:
    """A time in the reader's zone and way of writing, the UTC time on hover."""
    if not at:
        return ""
    at = _moment(at)
    locale, zone = _reading.get()
    utc = at.astimezone(dt.UTC)
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        utc.isoformat().replace("+00:00", "Z"),
        utc.strftime("%Y-%m-%d %H:%M:%S UTC"),
        i18n.format_time(at, locale, zone),
    )


def _day(at: dt.datetime | str | None) -> str:
    if not at:
        return ""
    locale, zone = _reading.get()
    return i18n.format_day(_moment(at), locale, zone)


def _duration(span: dt.timedelta) -> str:
    return i18n.format_duration(span, _reading.get()[0])


def _time_left(span: dt.timedelta) -> str:
    return i18n.format_time_left(span, _reading.get()[0])


def _number(value: float, digits: int = 0) -> str:
    return i18n.format_number(value, _reading.get()[0], digits)


# Installed by the i18n extension (not in Environment's type).
_install: Any = getattr(templates.env, "install_gettext_callables")  # noqa: B009
_install(gettext=_gettext, ngettext=_ngettext, newstyle=True)


def _meaning(value: str, table: Mapping[Any, str], kind: type[StrEnum]) -> str:
    try:
        return _gettext(table[kind(value)])
    except (ValueError, KeyError):
        return str(value)


def _word(table: Mapping[str, str]) -> Any:
    return lambda code: _gettext(table[code]) if code in table else code


def _amount(minor: int, currency: str) -> str:
    return i18n.format_amount(minor, currency, _reading.get()[0])


templates.env.globals.update(
    Markup=Markup,
    bars=daily_bars,
    amount=_amount,
    report_status_name=_word(REPORT_STATUSES),
    category_name=_word(CATEGORIES),
    basis_name=_word(BASES),
    role_name=_word(ROLES),
    status_name=_word(MEMBER_STATUSES),
    delivery_state=_word(DELIVERY_STATES),
    resolution_name=_word(RESOLUTIONS),
    series_name=_word(SERIES),
)
templates.env.filters.update(
    when=_when,
    day=_day,
    number=_number,
    duration=_duration,
    time_left=_time_left,
    meaning=lambda tag: _meaning(tag, GLOSSARY, Tag),
    outcome=lambda value: _meaning(value, OUTCOMES, Outcome),
    actor=lambda value: _meaning(value, ACTORS, ActorType),
)


def console_locale(request: Request, runtime: Runtime) -> str:
    """The language switch's choice, else the browser's Accept-Language, else the
    ledger's default."""
    return i18n.choose(
        request.cookies.get(LOCALE_COOKIE),
        request.headers.get("accept-language"),
        runtime.settings.default_locale,
    )


def say(message: str, **values: object) -> str:
    """A console message in the reader's language (``message`` marked with ``N_``)."""
    text = _gettext(message)
    return text % values if values else text


class ConsoleError(Exception):
    """Answered with the console's error page: a status, and a sentence to show (an
    ``N_``-marked message, translated for the reader, with its values)."""

    def __init__(self, status: int, message: str, **values: str | int) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.values = values


class StepFirst(Exception):
    """One step comes before anything else: the second factor's code (a session opened
    with the password alone), a password of one's own (someone else chose it), a second
    factor set up (the role requires one). Only that page, and sign-out, until then."""

    def __init__(self, page: str, next_path: str) -> None:
        super().__init__(page)
        self.page = page
        self.next_path = next_path


CODE_PATH = f"{PREFIX}/sign-in/code"
PASSWORD_PATH = f"{PREFIX}/password"
SECOND_FACTOR_PATH = f"{PREFIX}/second-factor"
SIGN_OUT_PATH = f"{PREFIX}/sign-out"


def step_first(found: LiveSession, runtime: Runtime) -> str | None:
    """The page that must come first for this session, if any."""
    user = found.user
    if found.awaiting is not None:
        return CODE_PATH
    if user.must_change_password:
        return PASSWORD_PATH
    if user.role in runtime.settings.roles_needing_second_factor and not user.second_factor:
        return SECOND_FACTOR_PATH
    return None


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
    first = step_first(found, runtime)
    path = request.url.path
    if first is not None and path != SIGN_OUT_PATH and not _under(path, first):
        raise StepFirst(first, path)
    if permission not in who.principal.permissions:
        await refusals.console_refused(
            who.recorder(runtime),
            path=request.url.path,
            method=request.method,
            needs=permission.value,
        )
        read_as(request)  # the role's name, in the reader's words
        raise ConsoleError(
            403,
            N_("Your role (%(role)s) cannot do this: it needs %(permission)s."),
            role=_word(ROLES)(who.role.value),
            permission=permission.value,
        )
    return who


def safe_next(value: str | None) -> str:
    """Only a path inside the console: never another site (``//evil``, ``https:``)."""
    if value and value.startswith(f"{PREFIX}/") and not value.startswith("//"):
        return value
    return PREFIX


def _under(path: str, page: str) -> bool:
    return path == page or path.startswith(f"{page}/")


def needs(permission: Permission) -> Any:
    """A dependency: the viewer, holding ``permission`` (declared, like the API's, so
    the deny-by-default test sees it)."""

    async def dependency(request: Request) -> Viewer:
        return await viewer(request, permission)

    setattr(dependency, PERMISSION_ATTR, permission)
    return Depends(dependency)


# Any signed-in console user (pages about one's own account and session).
SignedIn = Annotated[Viewer, needs(Permission.CONSOLE_USE)]


def try_again_in(message: str, exc: RateLimited) -> str:
    """``message`` (with ``%(seconds)s``) for a refusal that lasts ``retry_after``."""
    return say(message, seconds=max(1, exc.retry_after))


def refused_for_now(page: HTMLResponse, exc: RateLimited) -> HTMLResponse:
    """``page`` as a 429 answer, saying when to come back."""
    page.status_code = 429
    page.headers["Retry-After"] = str(max(1, exc.retry_after))
    return page


def check_origin(request: Request, runtime: Runtime) -> None:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return  # older browsers and non-browser clients send none; the token decides
    ours = urlsplit(runtime.settings.base_url)
    theirs = urlsplit(origin)
    if theirs.netloc not in {request.url.netloc, ours.netloc}:
        raise ConsoleError(403, N_("This form was sent from another site and was refused."))


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
            403,
            N_("This form has expired or was not sent from the console; reload the page."),
        )
    if refusal is not None:
        await refusals.console_form_refused(who.recorder(runtime), path=request.url.path)
        raise refusal
    return form


def read_as(request: Request) -> str:
    """Set this request's reader (language, time zone) for rendering; the language."""
    runtime = runtime_of(request)
    locale = console_locale(request, runtime)
    _reading.set((locale, runtime.settings.display_timezone))
    return locale


def render(
    request: Request, template: str, who: Viewer | None, status: int = 200, **context: Any
) -> HTMLResponse:
    runtime = runtime_of(request)
    locale = read_as(request)
    context.update(
        viewer=who,
        # While a step must come first, the pages it hides are not offered.
        first_step=step_first(who.session, runtime) if who else None,
        csrf_token=who.session.csrf_token if who else None,
        path=request.url.path,
        locale=locale,
        other_locale="en" if locale == "zh-CN" else "zh-CN",
        zone=runtime.settings.display_timezone,
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
    read_as(request)
    message = say(exc.message, **exc.values)
    return render(request, "error.html", None, status=exc.status, message=message)


async def step_first_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StepFirst)
    return RedirectResponse(f"{exc.page}?next={quote(exc.next_path)}", status_code=303)


async def sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    target = f"{PREFIX}/sign-in?next={quote(exc.next_path)}"
    if exc.reason in {"idle", "absolute"}:
        target += "&expired=1"
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response
