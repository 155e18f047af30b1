"""What the ledger's rate limits share: the notation and the store.

Limits are written in the ``limits`` library's notation (``"1000/minute;100000/day"``)
and counted with its sliding-window-counter strategy in the store named by
``LEDGER_RATE_LIMIT_STORAGE`` (``memory://`` counts per process; ``redis://host:6379``
shares the counts between processes). Used by pseudonym evaluations
(ledger/pseudonyms/limits.py) and sign-in failures (ledger/access/sign_in_guard.py).
"""

from __future__ import annotations

from limits import RateLimitItem, parse_many
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string


def parse_limits(text: str) -> list[RateLimitItem]:
    """The windows in ``text``; raises ValueError with a readable reason."""
    try:
        items = parse_many(text)
    except ValueError as exc:
        raise ValueError(
            f'not a rate limit: write it as "1000/minute;100000/day" ({exc})'
        ) from None
    if not items:
        raise ValueError('not a rate limit: write it as "1000/minute;100000/day"')
    return items


def sliding_window(storage: str) -> SlidingWindowCounterRateLimiter:
    """An async limiter on the named store ("memory://" -> its async flavour)."""
    uri = storage if storage.startswith("async+") else f"async+{storage}"
    return SlidingWindowCounterRateLimiter(storage_from_string(uri))
