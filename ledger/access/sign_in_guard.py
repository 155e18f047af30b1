"""Failed sign-ins, counted per account and per client address: console users' (account =
username) and member clients' at the token endpoint (account = client id).

An account is locked after ``LEDGER_SIGN_IN_FAILURES_PER_ACCOUNT`` failures (default
5 in 15 minutes) until the window has room again; an address after
``LEDGER_SIGN_IN_FAILURES_PER_ADDRESS`` (default 50 in 15 minutes), which slows one
machine trying many accounts. A locked attempt is refused before the password is
checked, so guessing costs the ledger no argon2 work, and a successful sign-in clears
the account's count. Counters live in the same store as the other limits
(``LEDGER_RATE_LIMIT_STORAGE``), shared by every worker of a deployment.

The trade-off is the usual one: someone who knows a username can keep that account
locked by failing on purpose. The lock lasts one window, and every failure and every
locked attempt is audited, so operators can see it happening.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from ledger.rate_limits import parse_limits


@dataclass(frozen=True, slots=True)
class Lockout:
    """Why a sign-in may not be tried now, and for how long."""

    scope: str  # "account" or "address"
    retry_after: int


class SignInGuard:
    def __init__(
        self,
        per_account: str,
        per_address: str,
        *,
        limiter: SlidingWindowCounterRateLimiter,
        namespace: str = "sign-in",
    ) -> None:
        self._account = parse_limits(per_account)[0]
        self._address = parse_limits(per_address)[0]
        self._limiter = limiter
        self._namespace = namespace

    async def check(self, username: str, address: str) -> Lockout | None:
        """None if a sign-in may be tried; else what is locked and until when."""
        for scope, item, key in self._keys(username, address):
            if not await self._limiter.test(item, *key):
                stats = await self._limiter.get_window_stats(item, *key)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                return Lockout(scope=scope, retry_after=wait)
        return None

    async def failed(self, username: str, address: str) -> None:
        for _, item, key in self._keys(username, address):
            await self._limiter.hit(item, *key)

    async def succeeded(self, username: str) -> None:
        await self._limiter.clear(self._account, self._namespace, "account", username.casefold())

    def _keys(self, username: str, address: str) -> list[tuple[str, RateLimitItem, list[str]]]:
        return [
            ("account", self._account, [self._namespace, "account", username.casefold()]),
            ("address", self._address, [self._namespace, "address", address]),
        ]
