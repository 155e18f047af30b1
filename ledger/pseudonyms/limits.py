"""Per-member limits on pseudonym evaluations, counted per element.

Every blinded element is one guess in a dictionary attack, so the limit counts
elements, not requests. Limits are the ``limits`` library's notation
(``"1000/minute;100000/day"``, ledger/rate_limits.py): a call is allowed only if every
window has room for all its elements, and then it is counted in every window.

Each decision says where the member stands (a ``Quota``); the API renders it as the draft
IETF ``RateLimit-Policy`` and ``RateLimit`` header fields, and ``Retry-After`` when refused.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from limits import RateLimitItem
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from ledger.errors import Quota
from ledger.rate_limits import parse_limits

POLICY = "pseudonym-evaluations"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    quota: Quota  # the tightest window, after this call


class EvaluationLimiter:
    def __init__(
        self,
        default: str,
        by_member: Mapping[str, str],
        *,
        limiter: SlidingWindowCounterRateLimiter,
    ) -> None:
        self._default = parse_limits(default)
        self._by_member = {member: parse_limits(text) for member, text in by_member.items()}
        self._limiter = limiter

    def limits_for(self, member_id: uuid.UUID) -> list[RateLimitItem]:
        return self._by_member.get(str(member_id), self._default)

    async def take(self, member_id: uuid.UUID, elements: int) -> Decision:
        """Count ``elements`` evaluations for the member if every window has room."""
        items = self.limits_for(member_id)
        key = str(member_id)
        # Tested first, so that a refused call is not counted in the windows that had room;
        # then each hit is atomic in the store, so concurrent workers cannot both take the
        # last of a window (a window that races to full refuses, its room given back).
        allowed = True
        for item in items:
            if not await self._limiter.test(item, key, cost=elements):
                allowed = False
                break
        if allowed:
            for item in items:
                if not await self._limiter.hit(item, key, cost=elements):
                    allowed = False
                    break
        return await self._decision(items, key, allowed=allowed)

    async def _decision(self, items: list[RateLimitItem], key: str, *, allowed: bool) -> Decision:
        now = time.time()
        tightest: tuple[int, RateLimitItem, int] | None = None
        for item in items:
            stats = await self._limiter.get_window_stats(item, key)
            reset = max(0, math.ceil(stats.reset_time - now))
            candidate = (stats.remaining, item, reset)
            if tightest is None or candidate[0] < tightest[0]:
                tightest = candidate
        assert tightest is not None
        remaining, item, reset = tightest
        quota = Quota(
            policy=POLICY,
            limit=item.amount,
            window_seconds=item.get_expiry(),
            remaining=remaining,
            reset_seconds=reset,
        )
        return Decision(allowed=allowed, quota=quota)
