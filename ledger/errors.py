"""The domain's errors. They know nothing of HTTP; ``api/errors.py`` maps them.

    LedgerError
    ├── InvalidInput            the caller sent something that cannot be accepted
    ├── NotFound                no such object, or not one the caller may see
    ├── Conflict                the object exists in a state that forbids the change
    │   ├── DuplicateReport     another report already uses this case reference
    │   └── NotYet              it will exist shortly (a receipt before its checkpoint)
    ├── AuthenticationFailed    who the caller is could not be established
    │   ├── InvalidClient       client id or secret wrong, client revoked, member suspended
    │   ├── InvalidCredentials  a user's name or password is wrong, or the user is disabled
    │   └── InvalidToken        a bearer token is malformed, expired, revoked or not ours
    ├── PermissionDenied        the caller is known but may not do this
    │   └── InsufficientScope   the token lacks a scope the operation needs
    └── Unavailable             a dependency (database, audit log) cannot serve right now
        └── Contention          concurrent requests collided; the whole request may be retried

Every message says what the caller can do about it, and never contains a raw identifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class LedgerError(Exception):
    """Base of every error the core raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(LedgerError):
    """The input cannot be accepted; ``fields`` names the offending fields when known."""

    def __init__(self, message: str, *, fields: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.fields = tuple(fields)


class NotFound(LedgerError):
    """No such object, or one the caller may not see (the two are not told apart)."""


class Conflict(LedgerError):
    """The change conflicts with the object's current state."""

    def __init__(self, message: str, *, current_state: str | None = None) -> None:
        super().__init__(message)
        self.current_state = current_state


class DuplicateReport(Conflict):
    """A different report already uses this case reference; ``report_id`` names it."""

    def __init__(self, message: str, *, report_id: str) -> None:
        super().__init__(message, current_state="exists")
        self.report_id = report_id


class NotYet(Conflict):
    """What was asked for exists, but not yet in the form asked for; ask again in
    ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, current_state="pending")
        self.retry_after = retry_after


class AuthenticationFailed(LedgerError):
    """The caller's identity could not be established."""


class InvalidClient(AuthenticationFailed):
    """Client authentication failed (RFC 6749 §5.2 ``invalid_client``)."""


class InvalidCredentials(AuthenticationFailed):
    """A human user's sign-in failed."""


class SecondFactorRequired(AuthenticationFailed):
    """The password was right, and the account also needs its one-time code."""


class InvalidToken(AuthenticationFailed):
    """A bearer token was refused (RFC 6750 §3.1 ``invalid_token``)."""


class PermissionDenied(LedgerError):
    """The caller is authenticated but not allowed to do this."""


class PasswordChangeRequired(PermissionDenied):
    """A console user whose password someone else chose signs in only to change it."""


class SecondFactorSetupRequired(PermissionDenied):
    """The user's role requires a second factor, and the user has not set one up yet."""


class InsufficientScope(PermissionDenied):
    """The token lacks a needed scope (RFC 6750 §3.1 ``insufficient_scope``)."""

    def __init__(self, message: str, *, required: Sequence[str]) -> None:
        super().__init__(message)
        self.required = tuple(required)


class Unavailable(LedgerError):
    """A dependency cannot serve right now; the caller may retry later."""


class Contention(Unavailable):
    """Concurrent transactions collided (a deadlock, a serialization failure, a row not
    yet visible). Nothing was written; the server retries the request a few times before
    it answers that the caller may retry."""


class RateLimited(LedgerError):
    """Over a rate limit: come back in ``retry_after`` seconds. ``quota`` is the limit
    that refused, when there is a published one (the API renders both as headers)."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: int,
        quota: Quota | None = None,
        limit: str = "other",
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.quota = quota
        self.limit = limit  # which limit, for ledger_rate_limit_refusals_total


@dataclass(frozen=True, slots=True)
class Quota:
    """Where a caller stands against a named limit: ``limit`` per ``window_seconds``,
    ``remaining`` now, and room again in ``reset_seconds``."""

    policy: str
    limit: int
    window_seconds: int
    remaining: int
    reset_seconds: int
