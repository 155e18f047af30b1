"""The audit log as the running ledger uses it: the group-commit writer for reads, the
sequencer loop that integrates events, and periodic signed checkpoints."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ledger.access.keys import KeyRingSource
from ledger.audit import checkpoints
from ledger.audit.checkpoints import CheckpointView
from ledger.audit.log import AuditWriter
from ledger.audit.sequencer import Sequencer
from ledger.audit.tree import tree_size
from ledger.clock import Clock
from ledger.db import create_sessionmaker

log = logging.getLogger("ledger.audit")

FULL_SWEEP_EVERY_SECONDS = 600.0


def sequencer_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Integration reads and writes under one snapshot (REPEATABLE READ on PostgreSQL)."""
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    return create_sessionmaker(engine)


class AuditLog:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        clock: Clock,
        keys: KeyRingSource,
        origin: str,
        checkpoint_every_leaves: int = 1000,
        checkpoint_every_seconds: float = 60.0,
        interval_seconds: float = 0.5,
        gap_grace: dt.timedelta = dt.timedelta(seconds=60),
    ) -> None:
        self.clock = clock
        self.keys = keys
        self.origin = origin
        self.writer = AuditWriter(create_sessionmaker(engine), clock=clock)
        self.sequencer = Sequencer(grace=gap_grace)
        self._sessions = sequencer_sessionmaker(engine)
        self._every_leaves = checkpoint_every_leaves
        self._every_seconds = checkpoint_every_seconds
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def integrate(self, *, full_sweep: bool = False) -> int:
        """Integrate every waiting event; returns how many leaves were added."""
        total = 0
        while True:
            async with self._sessions() as session, session.begin():
                added = await self.sequencer.integrate(session, full_sweep=full_sweep)
            total += added
            if added < self.sequencer.batch:
                return total

    async def checkpoint(self) -> tuple[CheckpointView, bool]:
        """Integrate, then sign the tree as it stands (idempotent for an unchanged tree)."""
        await self.integrate()
        async with self._sessions() as session, session.begin():
            return await checkpoints.create(
                session, ring=self.keys.current(), origin=self.origin, now=self.clock.now()
            )

    def start(self) -> None:
        self.writer.start()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="audit-sequencer")

    async def stop(self) -> None:
        """Finish the current pass (never cut a transaction short), then stop."""
        if self._task is not None:
            task, self._task = self._task, None
            self._stopping.set()
            await task
        await self.writer.stop()

    async def _run(self) -> None:
        last_sweep = -FULL_SWEEP_EVERY_SECONDS
        last_checkpoint = time.monotonic()
        while not self._stopping.is_set():
            try:
                now = time.monotonic()
                sweep = now - last_sweep >= FULL_SWEEP_EVERY_SECONDS
                await self.integrate(full_sweep=sweep)
                if sweep:
                    last_sweep = now
                if await self._checkpoint_due(now - last_checkpoint):
                    await self.checkpoint()
                    last_checkpoint = now
            except Exception as exc:  # noqa: BLE001  (keep sequencing; the next pass retries)
                log.warning("audit sequencing pass failed", extra={"error": type(exc).__name__})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)

    async def _checkpoint_due(self, elapsed: float) -> bool:
        async with self._sessions() as session:
            size = await tree_size(session)
            signed = await checkpoints.latest(session)
        signed_size = -1 if signed is None else signed.tree_size
        if size == signed_size:
            return False
        return size - max(signed_size, 0) >= self._every_leaves or elapsed >= self._every_seconds
