"""The one table from error to HTTP status, rendered as RFC 9457 problem+json.

Problem ``type`` URIs are relative (``/problems/<slug>``) and stable; the ledger serves
a short description at each. A problem never echoes the input that caused it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.retry import mark_retryable
from ledger import errors
from ledger.logs import request_id_var

log = logging.getLogger("ledger.api")

PROBLEM_JSON = "application/problem+json"
BEARER_REALM = 'Bearer realm="refund-ledger"'


@dataclass(frozen=True, slots=True)
class ProblemType:
    status: int
    slug: str
    title: str
    meaning: str = ""  # for the OpenAPI description and docs/api.md


def _p(status: int, slug: str, title: str, meaning: str) -> ProblemType:
    return ProblemType(status, slug, title, meaning)


# One status and shape for every input the ledger cannot accept, whether it fails to
# parse, has unknown fields or wrong types, or breaks a rule of the domain: 422
# Unprocessable Content (RFC 9110 §15.5.21), with ``errors`` naming each field.
VALIDATION = _p(
    422,
    "validation",
    "Request validation failed",
    "input the ledger cannot accept; `errors` names each field and what to fix",
)
INTERNAL = _p(500, "internal", "Internal error", "a fault of the ledger's; report the request id")
BAD_REQUEST = _p(
    400, "bad-request", "Bad request", "a malformed Authorization header (RFC 6750 invalid_request)"
)
INVALID_TOKEN = _p(
    401,
    "invalid-token",
    "Invalid access token",
    "expired, revoked, suspended, for another audience, or not issued by this ledger",
)
INVALID_CLIENT = _p(
    401, "invalid-client", "Client authentication failed", "the client id or secret is wrong"
)
INVALID_CREDENTIALS = _p(
    401, "invalid-credentials", "Sign-in failed", "the username or password is wrong"
)
SECOND_FACTOR_REQUIRED = _p(
    401,
    "second-factor-required",
    "One-time code required",
    "the password was right and the account has a second factor: send `one_time_code`, "
    "the 6-digit code from the authenticator app or an unused recovery code",
)
UNAUTHENTICATED = _p(401, "unauthenticated", "Authentication required", "no access token was sent")
INSUFFICIENT_SCOPE = _p(
    403,
    "insufficient-scope",
    "Insufficient scope",
    "the token lacks the scope `required_scope` names",
)
PASSWORD_CHANGE_REQUIRED = _p(
    403,
    "password-change-required",
    "Password change required",
    "a console user whose password was set by an operator must first choose their own "
    "in the console (/console/password)",
)
SECOND_FACTOR_SETUP_REQUIRED = _p(
    403,
    "second-factor-setup-required",
    "Second factor required",
    "the user's role requires a second factor: set one up in the console "
    "(/console/second-factor) first",
)
FORBIDDEN = _p(
    403,
    "forbidden",
    "Forbidden",
    "the caller may not do this (a console user's token "
    "on a member operation, a role without the permission)",
)
NOT_FOUND = _p(
    404, "not-found", "Not found", "no such object, or not yours (the two are not told apart)"
)
CONFLICT = _p(
    409,
    "conflict",
    "Conflict",
    "the object's state forbids the change; `current_state` "
    "says which (`pending`: ask again after Retry-After)",
)
RATE_LIMITED = _p(
    429,
    "rate-limited",
    "Too many requests",
    "over a limit: retry after Retry-After seconds (RateLimit headers say how much is left)",
)
UNAVAILABLE = _p(
    503,
    "unavailable",
    "Service unavailable",
    "the database is busy or unreachable, or a "
    "concurrent request won; nothing was changed, retry after Retry-After",
)

# Most specific first: the first entry the error is an instance of wins.
_PROBLEMS: list[tuple[type[Exception], ProblemType]] = [
    (errors.InvalidToken, INVALID_TOKEN),
    (errors.InvalidClient, INVALID_CLIENT),
    (errors.InvalidCredentials, INVALID_CREDENTIALS),
    (errors.SecondFactorRequired, SECOND_FACTOR_REQUIRED),
    (errors.AuthenticationFailed, UNAUTHENTICATED),
    (errors.InsufficientScope, INSUFFICIENT_SCOPE),
    (errors.PasswordChangeRequired, PASSWORD_CHANGE_REQUIRED),
    (errors.SecondFactorSetupRequired, SECOND_FACTOR_SETUP_REQUIRED),
    (errors.PermissionDenied, FORBIDDEN),
    (errors.InvalidInput, VALIDATION),
    (errors.NotFound, NOT_FOUND),
    (errors.Conflict, CONFLICT),
    (errors.RateLimited, RATE_LIMITED),
    (errors.Unavailable, UNAVAILABLE),
]

# What the HTTP layer answers before any route runs (api/middleware.py, routing).
_HTTP_PROBLEMS = [
    _p(404, "not-found", "Not found", "no such resource"),
    _p(405, "method-not-allowed", "Method not allowed", "the resource exists, not this method"),
    _p(
        413,
        "payload-too-large",
        "Content too large",
        "the body is larger than the route takes (64 KiB unless the route says otherwise)",
    ),
    _p(
        415,
        "unsupported-media-type",
        "Unsupported media type",
        "a body sent to /v1/ that is not declared as JSON",
    ),
]
_HTTP_SLUGS = {p.status: p.slug for p in _HTTP_PROBLEMS} | {400: BAD_REQUEST.slug}

# Every problem the service can answer, once per slug (the OpenAPI description's
# ``Problem.type`` values, and the table in docs/api.md; a test compares the two).
CATALOGUE: tuple[ProblemType, ...] = tuple(
    {
        p.slug: p
        for p in [*(problem for _, problem in _PROBLEMS), BAD_REQUEST, INTERNAL, *_HTTP_PROBLEMS]
    }.values()
)

PROBLEM_TYPES: dict[str, ProblemType] = {p.slug: p for p in CATALOGUE}


class OAuthError(Exception):
    """An RFC 6749 §5.2 error from the token endpoint (plain JSON, not problem+json)."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = dict(headers or {})


def _too_large(limit: int) -> str:
    return f"the body is larger than this route accepts ({limit:,} bytes); send less, or split it"


class BodyTooLarge(StarletteHTTPException):
    """A request body that streamed past its route's cap (api/middleware.py). An HTTP
    exception, so that FastAPI's body parsing lets it through as it is."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))


def too_large_response(limit: int) -> JSONResponse:
    return problem_response(413, "payload-too-large", "Content too large", _too_large(limit))


async def _oauth_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache", **exc.headers}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="refund-ledger"'
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description},
        status_code=exc.status,
        headers=headers,
    )


def problem_for(exc: errors.LedgerError) -> ProblemType:
    if isinstance(exc, errors.InvalidInput) and exc.fields == ("authorization",):
        return BAD_REQUEST  # a malformed Authorization header: RFC 6750 §3.1 invalid_request
    for cls, problem in _PROBLEMS:
        if isinstance(exc, cls):
            return problem
    return BAD_REQUEST


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": request_id_var.get(),
    }
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def rate_limit_headers(quota: errors.Quota) -> dict[str, str]:
    """``RateLimit-Policy`` and ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers)."""
    return {
        "RateLimit-Policy": f'"{quota.policy}";q={quota.limit};w={quota.window_seconds}',
        "RateLimit": f'"{quota.policy}";r={quota.remaining};t={quota.reset_seconds}',
    }


def _bearer_challenge(error: str, detail: str, scope: str | None = None) -> str:
    parts = [BEARER_REALM, f'error="{error}"', f'error_description="{_quote(detail)}"']
    if scope:
        parts.append(f'scope="{scope}"')
    return ", ".join(parts)


def _quote(text: str) -> str:
    # RFC 6750 §3: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
    return "".join(c for c in text if 0x20 <= ord(c) <= 0x7E and c not in '"\\')


async def _ledger_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.LedgerError)
    if isinstance(exc, errors.Contention):
        mark_retryable(request.scope)
    problem = problem_for(exc)
    headers, extra = _auth_challenge(exc)
    if isinstance(exc, errors.InvalidInput):
        fields = [{"field": f, "detail": exc.message} for f in exc.fields or ("body",)]
        if problem is VALIDATION:
            return validation_response(fields, exc.message)
        extra["errors"] = fields
    if isinstance(exc, errors.Conflict) and exc.current_state is not None:
        extra["current_state"] = exc.current_state
    if isinstance(exc, errors.DuplicateReport):
        headers["Location"] = f"/v1/reports/{exc.report_id}"
        extra["existing_report_id"] = exc.report_id
    headers.update(_when_to_retry(request, exc))
    return problem_response(
        problem.status, problem.slug, problem.title, exc.message, headers=headers, **extra
    )


def _auth_challenge(exc: errors.LedgerError) -> tuple[dict[str, str], dict[str, Any]]:
    """The ``WWW-Authenticate`` challenge (RFC 6750 §3) an auth failure answers with,
    and the scope the caller lacks."""
    if isinstance(exc, errors.InvalidToken):
        return {"WWW-Authenticate": _bearer_challenge("invalid_token", exc.message)}, {}
    if isinstance(exc, errors.InsufficientScope):
        scope = " ".join(exc.required)
        challenge = _bearer_challenge("insufficient_scope", exc.message, scope)
        return {"WWW-Authenticate": challenge}, {"required_scope": scope}
    if isinstance(exc, errors.AuthenticationFailed):
        return {"WWW-Authenticate": BEARER_REALM}, {}
    if isinstance(exc, errors.InvalidInput) and exc.fields == ("authorization",):
        return {"WWW-Authenticate": _bearer_challenge("invalid_request", exc.message)}, {}
    return {}, {}


def _when_to_retry(request: Request, exc: errors.LedgerError) -> dict[str, str]:
    """``Retry-After`` (and the rate-limit headers) for a refusal that passes; a
    refusal by a limit is counted for the operators' metrics."""
    if isinstance(exc, errors.Unavailable):
        return {"Retry-After": "1"}
    if isinstance(exc, errors.NotYet):
        return {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, errors.RateLimited):
        runtime = getattr(request.app.state, "runtime", None)
        if runtime is not None:
            runtime.metrics.rate_limited.labels(exc.limit).inc()
        headers = rate_limit_headers(exc.quota) if exc.quota else {}
        headers["Retry-After"] = str(max(1, exc.retry_after))
        return headers
    return {}


def field_name(loc: Sequence[int | str]) -> str:
    """A field as the caller wrote it: ``amount_minor``, ``reports.3.subject`` in the
    body; ``query.limit``, ``path.event_id``, ``header.idempotency-key`` elsewhere."""
    parts = [str(part) for part in loc]
    if parts[:1] == ["body"]:
        parts = parts[1:]
    return ".".join(parts) or "body"


_MESSAGES = {
    "extra_forbidden": "unknown field: remove it (the schema is at /docs)",
    "missing": "required: send this field",
}


def field_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """pydantic's errors as ``{"field", "detail"}``; the input itself is left out."""
    out = []
    for e in errors:
        kind = e.get("type")
        if kind == "json_invalid":
            # The position of the syntax error, never the text around it.
            reason = str(e.get("ctx", {}).get("error") or e["msg"]).removeprefix("Invalid JSON: ")
            out.append({"field": "body", "detail": f"the body is not valid JSON: {reason}"})
            continue
        out.append({"field": field_name(e["loc"]), "detail": _MESSAGES.get(kind, e["msg"])})
    return out


def validation_response(fields: list[dict[str, str]], detail: str | None = None) -> JSONResponse:
    """The one answer to input that cannot be accepted, on every route (docs/api.md)."""
    names = ", ".join(dict.fromkeys(f["field"] for f in fields)) or "the request"
    return problem_response(
        VALIDATION.status,
        VALIDATION.slug,
        VALIDATION.title,
        detail or f"fix these fields and send again: {names}",
        errors=fields,
    )


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return validation_response(field_errors(exc.errors()))


FASTAPI_UNPARSABLE_BODY = "There was an error parsing the body"


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == FASTAPI_UNPARSABLE_BODY:
        # FastAPI parsed the body with ``json.loads``, which gave up (nesting too deep):
        # as malformed as any other JSON the ledger cannot read, and answered alike.
        detail = "the body is not valid JSON: nested too deeply"
        return validation_response([{"field": "body", "detail": detail}])
    slug = _HTTP_SLUGS.get(exc.status_code, "bad-request")
    problem = PROBLEM_TYPES[slug]
    detail = exc.detail if isinstance(exc.detail, str) else "the request cannot be served"
    if exc.status_code == 404 and detail == "Not Found":
        detail = "no such resource; see /docs for the API"
    if exc.status_code == 405:
        detail = "this method is not allowed on this resource; see /docs for the API"
    return problem_response(
        exc.status_code, slug, problem.title, detail, headers=dict(exc.headers or {})
    )


async def _database_unavailable(_request: Request, exc: Exception) -> Response:
    # Locked (SQLite busy timeout), unreachable, pool exhausted: the caller may retry.
    # Nothing was committed, because the request's transaction rolled back.
    log.warning("database unavailable", extra={"error": type(exc).__name__})
    return _unavailable("the database is busy or unreachable; nothing was changed, retry shortly")


def _unavailable(detail: str) -> JSONResponse:
    return problem_response(
        503, "unavailable", "Service unavailable", detail, headers={"Retry-After": "1"}
    )


# PostgreSQL's serialization_failure and deadlock_detected: the transaction was rolled
# back because a concurrent one won, and the same request may simply run again.
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` lost a race with a concurrent transaction (nothing was kept)."""
    if isinstance(exc, errors.Contention):
        return True
    orig = getattr(exc, "orig", None)
    return isinstance(exc, sa_exc.DBAPIError) and getattr(orig, "sqlstate", None) in (
        TRANSIENT_SQLSTATES
    )


# PostgreSQL refuses text it cannot store (a NUL character, say): the input's fault, and
# nothing was written, since the transaction rolled back.
UNSTORABLE_TEXT_SQLSTATES = frozenset({"22021", "22P05"})


async def _database_error(request: Request, exc: Exception) -> Response:
    if getattr(getattr(exc, "orig", None), "sqlstate", None) in UNSTORABLE_TEXT_SQLSTATES:
        detail = "text may not contain the NUL character (or bytes that are not UTF-8)"
        return validation_response([{"field": "body", "detail": detail}])
    if not is_transient(exc):
        return await _unexpected(request, exc)
    # Retried by api/retry.py; this answer reaches the client after the last attempt.
    mark_retryable(request.scope)
    log.info("transaction lost to a concurrent one", extra={"error": type(exc).__name__})
    return _unavailable(
        "concurrent requests changed the same records; nothing was changed, retry shortly"
    )


def internal_error_response() -> JSONResponse:
    return problem_response(
        INTERNAL.status,
        INTERNAL.slug,
        INTERNAL.title,
        "the ledger failed to handle this request; report the request id to its operators",
    )


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc)
    return internal_error_response()


Handler = Callable[[Request, Exception], Awaitable[Response]]

# asyncpg raises a bare ConnectionError (refused, reset) when it cannot connect.
_DATABASE_ERRORS = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    ConnectionError,
)

_HANDLERS: list[tuple[type[Exception], Handler]] = [
    (OAuthError, _oauth_error),
    (errors.LedgerError, _ledger_error),
    (RequestValidationError, _validation_error),
    (StarletteHTTPException, _http_error),
    *((db_error, _database_unavailable) for db_error in _DATABASE_ERRORS),
    # Last: every other database error (a deadlock among them) that the above do not take.
    (sa_exc.DBAPIError, _database_error),
]


async def error_response(request: Request, exc: Exception) -> Response | None:
    """The problem response for ``exc``, as the app's handlers would give it; None for an
    error no handler expects (the caller lets it reach the last-resort handler)."""
    for cls, handler in _HANDLERS:
        if isinstance(exc, cls):
            return await handler(request, exc)
    return None


def install(app: FastAPI) -> None:
    for cls, handler in _HANDLERS:
        app.add_exception_handler(cls, handler)
    app.add_exception_handler(Exception, _unexpected)
