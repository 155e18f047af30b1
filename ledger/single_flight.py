"""One lookup for many askers: concurrent calls for the same key share one call.

When a cached value expires on a loaded server, every request in flight finds it
missing at once. Without this, each would read the database for the same answer (a
burst of identical reads, all queued on the same connection pool, at the moment the
server is busiest). With it, the first starts the read and the others await its result,
or its exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._calls: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        """``call()``'s result, shared with every caller of ``key`` while it runs."""
        future = self._calls.get(key)
        if future is None:
            future = asyncio.ensure_future(call())
            self._calls[key] = future
            future.add_done_callback(lambda done: self._finished(key, done))
        # A cancelled asker must not cancel the call the others are waiting on.
        return await asyncio.shield(future)

    def _finished(self, key: K, future: asyncio.Future[V]) -> None:
        if self._calls.get(key) is future:
            del self._calls[key]
        if not future.cancelled():
            future.exception()  # retrieved: if every asker left, asyncio need not warn

    def __len__(self) -> int:
        return len(self._calls)
