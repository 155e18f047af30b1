"""What the ledger's rate limits share: the notation and the store.

Limits are written in the ``limits`` library's notation (``"1000/minute;100000/day"``)
and counted with its sliding-window-counter strategy. The counters must be shared by
every process of a deployment, or each worker counts on its own and N workers let N
times the limit through. ``LEDGER_RATE_LIMIT_STORAGE`` names the store:

- ``database`` (the default): a table in the ledger's own database, which every worker
  and host of a deployment already shares (``DatabaseStorage`` below);
- ``redis://host:6379``: Redis, through the ``limits`` library, when a deployment has it
  and wants the counting off the database;
- ``memory://``: per process, for tests and a single process only; ``ledger serve``
  refuses it with more than one worker.

Used by pseudonym evaluations (ledger/pseudonyms/limits.py), console sign-in failures
and token-endpoint failures (ledger/access/sign_in_guard.py).
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage
from limits.aio.storage.base import SlidingWindowCounterSupport
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string
from limits.storage.base import TimestampedSlidingWindow
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db import Base, table_of

DATABASE = "database"
PER_PROCESS = "memory://"


class RateCounter(Base):
    """One counter of one window of one limit; rows past ``expires_at`` count nothing
    and are reused by the next hit (the maintenance job deletes the rest)."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    count: Mapped[int] = mapped_column(sa.BigInteger)
    expires_at: Mapped[float] = mapped_column(sa.Float, index=True)  # Unix time


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


def sliding_window(
    storage: str, engine: AsyncEngine | None = None
) -> SlidingWindowCounterRateLimiter:
    """An async limiter on the named store (``database`` with its engine, or a URI)."""
    if storage == DATABASE:
        assert engine is not None
        return SlidingWindowCounterRateLimiter(DatabaseStorage(engine))
    uri = storage if storage.startswith("async+") else f"async+{storage}"
    return SlidingWindowCounterRateLimiter(storage_from_string(uri))


class DatabaseStorage(Storage, SlidingWindowCounterSupport, TimestampedSlidingWindow):
    """The ``limits`` store interface on a table of the ledger's database.

    Every operation is one statement in its own short transaction, outside the request's:
    a refused sign-in must be counted even though the request's transaction rolls back.
    An increment is one upsert, so concurrent workers never lose a hit.
    """

    STORAGE_SCHEME = None

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__()
        self._engine = engine
        self._table = table_of(RateCounter)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sa.exc.DBAPIError

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        async with self._engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert  # noqa: PLC0415
            else:
                from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]  # noqa: PLC0415
            fresh = insert(self._table).values(key=key, count=amount, expires_at=now + expiry)
            live = self._table.c.expires_at > now
            upsert = fresh.on_conflict_do_update(
                index_elements=["key"],
                set_={
                    "count": sa.case(
                        (live, self._table.c.count + amount), else_=fresh.excluded.count
                    ),
                    "expires_at": sa.case(
                        (live, self._table.c.expires_at), else_=fresh.excluded.expires_at
                    ),
                },
            )
            return int((await conn.execute(upsert.returning(self._table.c.count))).scalar_one())

    async def decr(self, key: str, amount: int = 1) -> int:
        async with self._engine.begin() as conn:
            count = await conn.scalar(
                sa.update(self._table)
                .where(self._table.c.key == key)
                .values(
                    count=sa.case(
                        (self._table.c.count > amount, self._table.c.count - amount), else_=0
                    )
                )
                .returning(self._table.c.count)
            )
        return int(count or 0)

    async def get(self, key: str) -> int:
        async with self._engine.connect() as conn:
            count = await conn.scalar(
                sa.select(self._table.c.count).where(
                    self._table.c.key == key, self._table.c.expires_at > time.time()
                )
            )
        return int(count or 0)

    async def get_expiry(self, key: str) -> float:
        async with self._engine.connect() as conn:
            expires = await conn.scalar(
                sa.select(self._table.c.expires_at).where(self._table.c.key == key)
            )
        return float(expires) if expires is not None else time.time()

    async def check(self) -> bool:
        async with self._engine.connect() as conn:
            await conn.execute(sa.select(1))
        return True

    async def reset(self) -> int | None:
        async with self._engine.begin() as conn:
            return (await conn.execute(sa.delete(self._table))).rowcount

    async def clear(self, key: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(sa.delete(self._table).where(self._table.c.key == key))

    # The sliding window counter, as the ``limits`` library's own stores compute it: the
    # previous window's count weighted by how much of it still overlaps, plus this one's.

    async def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        if amount > limit:
            return False
        previous_key, current_key = self.sliding_window_keys(key, expiry, time.time())
        previous, previous_ttl, current, _ = await self._window(previous_key, current_key, expiry)
        weight = previous * previous_ttl / expiry
        if int(weight + current) + amount > limit:
            return False
        # The increment is atomic; if concurrent hits took the room meanwhile, the count
        # it returns says so, and this hit is taken back and refused.
        if int(weight + await self.incr(current_key, 2 * expiry, amount=amount)) > limit:
            await self.decr(current_key, amount)
            return False
        return True

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        previous_key, current_key = self.sliding_window_keys(key, expiry, time.time())
        return await self._window(previous_key, current_key, expiry)

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        previous_key, current_key = self.sliding_window_keys(key, expiry, time.time())
        await self.clear(current_key)
        await self.clear(previous_key)

    async def _window(
        self, previous_key: str, current_key: str, expiry: int
    ) -> tuple[int, float, int, float]:
        now = time.time()
        previous_count = await self.get(previous_key)
        current_count = await self.get(current_key)
        previous_ttl = (1 - (((now - expiry) / expiry) % 1)) * expiry if previous_count else 0.0
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return previous_count, previous_ttl, current_count, current_ttl


async def purge_expired(session: AsyncSession) -> int:
    """Delete counters whose window has passed (the maintenance job's)."""
    table = table_of(RateCounter)
    result = await session.execute(sa.delete(table).where(table.c.expires_at <= time.time()))
    return int(getattr(result, "rowcount", 0) or 0)
