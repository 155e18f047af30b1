"""Which clients may act, held in memory and dropped the moment any of them changes.

Every authenticated request must see a revocation or a suspension at once, so without
this cache each one reads the client's and its member's state (about 0.4 ms). With it,
an active client's state is read once and kept until PostgreSQL says a client or a
member changed: a trigger (migration 0005) notifies the ``ledger_access`` channel in the
changing transaction, PostgreSQL delivers the notification when that transaction
commits, and a listening connection here clears the cache. So a revocation made by any
process (the CLI, another worker, another node) applies everywhere within the
notification's delivery time, a few milliseconds.

The cache is only ever on while the listening connection is up: it starts off, turns on
once ``LISTEN`` has succeeded, and is cleared and turned off if the connection drops
(then re-established with backoff). On SQLite, which has no notifications, it stays
off and every request reads.

A read that started before a change and finishes after its notification must not put
the old state back: each read notes the cache's generation first, and its result is
kept only if no notification arrived in between.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from ledger.listen import Listener
from ledger.single_flight import SingleFlight

CHANNEL = "ledger_access"
APPLICATION_NAME = "ledger-access-listener"

Key = tuple[str, uuid.UUID]
S = TypeVar("S")


class AccessCache:
    """Active (client_id, member_id) pairs; only active ones are ever kept."""

    def __init__(self, *, size: int = 10_000, ttl_seconds: float = 60.0) -> None:
        self._size = size
        self._ttl = ttl_seconds
        self._active: OrderedDict[Key, float] = OrderedDict()
        self.generation = 0
        self.enabled = False
        self._changed = asyncio.Event()
        self._reads: SingleFlight[tuple[Key, int], Any] = SingleFlight()

    def is_active(self, key: Key) -> bool:
        """True if ``key`` is known active; False means: read the database."""
        if not self.enabled:
            return False
        stored = self._active.get(key)
        if stored is None:
            return False
        if time.monotonic() - stored > self._ttl:  # belt and braces; notifications decide
            self._active.pop(key, None)
            return False
        return True

    async def read(self, key: Key, read: Callable[[], Awaitable[S]]) -> S:
        """``read()`` for a miss, shared by the requests that miss ``key`` together (with
        the cache on or off); a change since that read began starts a new one."""
        result: S = await self._reads.run((key, self.generation), read)
        return result

    def remember(self, key: Key, generation: int) -> None:
        """Keep ``key`` as active, unless something changed since ``generation``."""
        if not self.enabled or generation != self.generation or not self._size:
            return
        self._active[key] = time.monotonic()
        self._active.move_to_end(key)
        if len(self._active) > self._size:
            self._active.popitem(last=False)

    def invalidate(self) -> None:
        self.generation += 1
        self._active.clear()
        self._changed.set()
        self._changed = asyncio.Event()

    def enable(self) -> None:
        self.invalidate()
        self.enabled = True

    def disable(self) -> None:
        self.enabled = False
        self.invalidate()

    async def changed_since(self, generation: int) -> None:
        """Return once the cache was invalidated after ``generation`` was read."""
        while self.generation == generation:
            await self._changed.wait()


class AccessListener(Listener):
    """Keeps a ``LISTEN ledger_access`` connection up and the cache in step with it."""

    def __init__(self, dsn: str, cache: AccessCache, **timing: float) -> None:
        async def listening(_conn: asyncpg.Connection) -> None:
            cache.enable()

        super().__init__(
            dsn,
            channel=CHANNEL,
            application_name=APPLICATION_NAME,
            on_notify=lambda _payload: cache.invalidate(),
            on_listening=listening,
            on_lost=cache.disable,
            **timing,
        )
