"""A ``LISTEN`` connection kept up, for the in-memory state PostgreSQL keeps current.

Two caches live on notifications: which clients are active (ledger/access/state_cache.py)
and which subjects have anything that may count (ledger/scoring/live.py). Both follow
one rule: the state is only used while its listening connection is up. ``Listener``
connects, listens, calls ``on_listening(conn)`` (the cache loads what it needs and turns
on), then watches the connection. When it is lost (closed, reset, or silently stopped
answering, found by a probe every few seconds), ``on_lost()`` turns the cache off, and
the listener reconnects with backoff: whatever changed meanwhile is read afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

log = logging.getLogger("ledger.listen")

# What a lost or refused connection raises; the listener then retries.
LOST = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class Listener:
    def __init__(
        self,
        dsn: str,
        *,
        channel: str,
        application_name: str,
        on_notify: Callable[[str], None],
        on_listening: Callable[[asyncpg.Connection], Awaitable[None]],
        on_lost: Callable[[], None],
        max_backoff_seconds: float = 10.0,
        probe_every_seconds: float = 10.0,
    ) -> None:
        self._dsn = dsn
        self.channel = channel
        self.application_name = application_name
        self._on_notify = on_notify
        self._on_listening = on_listening
        self._on_lost = on_lost
        self._max_backoff = max_backoff_seconds
        self._probe_every = probe_every_seconds
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"{self.channel}-listener")

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._on_lost()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def listening(self) -> None:
        """Wait until the cache is on (for tests and the benchmark)."""
        await self._listening.wait()

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._listen()
                log.warning("listener lost its connection", extra={"channel": self.channel})
                backoff = 0.1
            except LOST as exc:
                log.warning(
                    "listener cannot listen",
                    extra={"channel": self.channel, "error": type(exc).__name__},
                )
            finally:
                self._on_lost()
                self._listening.clear()
            await asyncio.sleep(backoff)
            backoff = min(self._max_backoff, backoff * 2)

    async def _listen(self) -> None:
        """Listen until the connection is lost; the cache is on meanwhile."""
        lost = asyncio.Event()
        conn = await asyncpg.connect(
            self._dsn, server_settings={"application_name": self.application_name}
        )
        try:
            conn.add_termination_listener(lambda _c: lost.set())
            await conn.add_listener(self.channel, self._notified)
            await self._on_listening(conn)
            self._listening.set()
            await self._watch(conn, lost)
        finally:
            conn.terminate()

    async def _watch(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Return when the connection is lost. A connection that silently stopped
        answering (no FIN, no RST) is found by a probe every few seconds."""
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), timeout=self._probe_every)
            except TimeoutError:
                await conn.fetchval("SELECT 1", timeout=self._probe_every / 2)

    def _notified(self, _conn: object, _pid: object, _channel: object, payload: object) -> None:
        self._on_notify(str(payload))
