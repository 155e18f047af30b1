"""The SDK's errors: one class per kind of problem the ledger answers, and the SDK's own
for a ledger that could not be reached or did not answer in time. Nothing raw from
httpx escapes a call: a network failure is a ``TransportError`` whose ``__cause__`` is
the httpx exception.

    LedgerError
    ├── ApiError                  the ledger answered with an RFC 9457 problem
    │   ├── AuthenticationError   401 (OAuth ``error`` and ``error_description``)
    │   ├── PermissionDenied      403 (``required_scope``)
    │   ├── NotFound              404
    │   ├── Conflict              409 (``current_state``, ``existing_report_id``)
    │   ├── ValidationError       422 and 400 (``fields``)
    │   ├── RateLimited           429 (``retry_after``)
    │   ├── Unavailable           503 (``retry_after``)
    │   └── ServerError           any other 5xx
    ├── TransportError            no answer: refused, reset, DNS, TLS, a read timeout
    ├── DeadlineExceeded          the call's deadline passed before an answer
    ├── PseudonymKeyError         the ledger's pseudonym key is not the trusted one
    ├── InvalidProof              a VOPRF proof did not verify (voprf.py)
    └── InvalidReceipt            an audit receipt or checkpoint did not verify (proofs.py)

``NO_ANSWER`` is what a refund pipeline treats as "the ledger cannot answer now" (see
``gate.py``); the others are mistakes to fix (a wrong secret, a missing scope, bad input)
and are raised even inside a gate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class LedgerError(Exception):
    """Every error the SDK raises (except ``ValueError`` for arguments it refuses
    before sending anything, such as an invalid phone number)."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One field the ledger could not accept, and what to fix."""

    field: str
    detail: str


class ApiError(LedgerError):
    """The ledger answered with an error. ``problem`` is the whole RFC 9457 body;
    ``type`` its problem type (e.g. ``/problems/not-found``, listed in docs/api.md)."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem: dict[str, Any] = dict(problem)
        self.type = str(problem.get("type") or "about:blank")
        self.title = str(problem.get("title") or "")
        self.detail = str(problem.get("detail") or "")
        request_id = problem.get("request_id")
        self.request_id = str(request_id) if request_id is not None else None
        super().__init__(self._message())

    def _message(self) -> str:
        said = f" {self.detail}" if self.detail else ""
        ref = f" (request {self.request_id})" if self.request_id else ""
        return f"{self.status} {self.type}:{said}{ref}"


class AuthenticationError(ApiError):
    """401, or 400 from the token endpoint: the client id or secret is wrong, a scope
    was asked for that the credential lacks, or a token was refused after one fresh
    try. ``error`` and ``error_description`` are the OAuth 2.0 error (RFC 6749 §5.2,
    RFC 6750 §3.1): ``invalid_client``, ``invalid_token`` …"""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.error = str(problem.get("error") or "")
        self.error_description = str(problem.get("error_description") or "")
        if not problem.get("detail") and self.error_description:
            problem = {**problem, "detail": self.error_description}
        super().__init__(status, problem)

    def _message(self) -> str:
        return f"{self.status} {self.error or self.type}: {self.detail}"


class PermissionDenied(ApiError):
    """403: the credential may not do this; ``required_scope`` names the scope it
    lacks, when that is the reason."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        super().__init__(status, problem)
        scope = problem.get("required_scope")
        self.required_scope = str(scope) if scope is not None else None


class NotFound(ApiError):
    """404: no such object, or not yours (the ledger does not tell the two apart)."""


class Conflict(ApiError):
    """409: the object's state forbids the change; ``current_state`` says which."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        super().__init__(status, problem)
        state = problem.get("current_state")
        existing = problem.get("existing_report_id")
        self.current_state = str(state) if state is not None else None
        self.existing_report_id = str(existing) if existing is not None else None


class ValidationError(ApiError):
    """422 (or 400 for a malformed request): ``fields`` names each field and what to
    fix."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        super().__init__(status, problem)
        self.fields = [
            FieldError(str(e.get("field", "")), str(e.get("detail", "")))
            for e in problem.get("errors") or []
            if isinstance(e, Mapping)
        ]


class _Later(ApiError):
    def __init__(
        self, status: int, problem: Mapping[str, Any], retry_after: float | None = None
    ) -> None:
        super().__init__(status, problem)
        self.retry_after = retry_after


class RateLimited(_Later):
    """429 with no room left within the call's deadline: ``retry_after`` seconds until
    the limit has room (None if the ledger did not say)."""


class Unavailable(_Later):
    """503 that did not clear within the call's deadline: the ledger changed nothing;
    try again after ``retry_after`` seconds."""


class ServerError(ApiError):
    """A 5xx other than 503: a fault of the ledger's; give them ``request_id``."""


class TransportError(LedgerError):
    """The ledger could not be reached, or the connection failed before an answer
    (refused, reset, name resolution, TLS, a read that timed out). ``__cause__`` is
    the underlying exception. ``sent`` is True if the request may have reached the
    ledger (a write the SDK does not resend)."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class DeadlineExceeded(LedgerError):
    """The call's deadline (``deadline`` seconds, all retries included) passed before
    the ledger answered. A write may or may not have been made: the SDK's writes are
    idempotent where the API allows (``case_ref``, ``Idempotency-Key``), so sending it
    again is safe for those."""

    def __init__(self, operation: str, deadline: float) -> None:
        super().__init__(f"{operation}: no answer within the deadline of {deadline * 1000:.0f} ms")
        self.operation = operation
        self.deadline = deadline


class PseudonymKeyError(LedgerError):
    """The ledger's pseudonym key is not the one this client trusts, or changed."""


class UnusablePhoto(ValueError):
    """A photo too flat or too small to fingerprint usefully (PDQ quality below 50)."""

    def __init__(self, quality: int, minimum: int = 50) -> None:
        super().__init__(
            f"this photo's PDQ quality is {quality} (below {minimum}): it is too flat or "
            "too small to match on; it was not fingerprinted and nothing is sent"
        )
        self.quality = quality


# What a refund pipeline reads as "the ledger cannot answer now".
NO_ANSWER: tuple[type[LedgerError], ...] = (
    TransportError,
    DeadlineExceeded,
    Unavailable,
    RateLimited,
    ServerError,
)

_BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: ValidationError,
    415: ValidationError,
    422: ValidationError,
}

_CHALLENGE_ERROR = re.compile(r'error="([a-z_]+)"')


def retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds (delta-seconds form; the ledger sends no dates)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def from_response(status: int, body: object, headers: Mapping[str, str]) -> ApiError:
    """The typed error for an error response: ``body`` is its parsed JSON (a problem,
    or an OAuth error from the token endpoint), or its text when it was not JSON."""
    if isinstance(body, Mapping):
        problem: dict[str, Any] = dict(body)
    else:
        problem = {"detail": str(body)[:200]}
    if status == 401 and not problem.get("error"):
        found = _CHALLENGE_ERROR.search(headers.get("www-authenticate", ""))
        if found:
            problem["error"] = found.group(1)
    if status in (400, 401) and problem.get("error"):
        return AuthenticationError(status, problem)  # the token endpoint's OAuth errors
    if status == 429:
        return RateLimited(status, problem, retry_after(headers))
    if status == 503:
        return Unavailable(status, problem, retry_after(headers))
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else ApiError
    return cls(status, problem)
