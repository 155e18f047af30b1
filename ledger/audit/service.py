"""The audit log as the running ledger uses it: the group-commit writer for reads, the
sequencer loop that integrates events, and periodic signed checkpoints."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ledger.access.keys import KeyRingSource
from ledger.audit import checkpoints, cosigning
from ledger.audit.checkpoints import CheckpointView
from ledger.audit.cosigning import WitnessPeer
from ledger.audit.log import AuditWriter, sink_for
from ledger.audit.sequencer import ADVISORY_LOCK_KEY, Sequencer
from ledger.audit.tree import tree_size
from ledger.clock import Clock
from ledger.db import create_sessionmaker

log = logging.getLogger("ledger.audit")

FULL_SWEEP_EVERY_SECONDS = 600.0


@contextlib.asynccontextmanager
async def sequencing_session(
    engine: AsyncEngine, *, wait: bool = True
) -> AsyncIterator[AsyncSession | None]:
    """A transaction in which this process alone integrates, or None if another does.

    On PostgreSQL a session-level advisory lock is taken *before* the transaction
    begins, so the REPEATABLE READ snapshot includes every earlier integration; with
    ``wait=False`` a busy lock yields None. On SQLite the write transaction itself is
    the lock.
    """
    async with engine.connect() as conn:
        if engine.dialect.name != "postgresql":
            async with AsyncSession(bind=conn, expire_on_commit=False) as session, session.begin():
                yield session
            return
        lock = sa.func.pg_advisory_lock if wait else sa.func.pg_try_advisory_lock
        granted = await conn.scalar(sa.select(lock(ADVISORY_LOCK_KEY)))
        await conn.commit()
        if granted is False:
            yield None
            return
        try:
            snapshot = await conn.execution_options(isolation_level="REPEATABLE READ")
            session = AsyncSession(bind=snapshot, expire_on_commit=False)
            async with session, session.begin():
                yield session
        finally:
            await conn.rollback()
            await conn.execution_options(isolation_level="READ COMMITTED")
            await conn.scalar(sa.select(sa.func.pg_advisory_unlock(ADVISORY_LOCK_KEY)))
            await conn.commit()


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
        witnesses: list[WitnessPeer] | None = None,
    ) -> None:
        self.clock = clock
        self.witnesses = list(witnesses or [])
        self.keys = keys
        self.origin = origin
        self.writer = AuditWriter(sink_for(engine), clock=clock)
        self.sequencer = Sequencer(grace=gap_grace)
        self.engine = engine
        self._reads = create_sessionmaker(engine, read_only=True)
        self._writes = create_sessionmaker(engine)
        self._every_leaves = checkpoint_every_leaves
        self._every_seconds = checkpoint_every_seconds
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def integrate(self, *, full_sweep: bool = False, wait: bool = True) -> int:
        """Integrate every waiting event; returns how many leaves were added.

        With ``wait=False`` it returns 0 at once when another process is integrating.
        """
        total = 0
        while True:
            async with sequencing_session(self.engine, wait=wait) as session:
                if session is None:
                    return total
                added = await self.sequencer.integrate(session, full_sweep=full_sweep)
            total += added
            # A backlog is integrated batch by batch; shutting down stops between two
            # (what is left waits for the next start, nothing is lost).
            if added < self.sequencer.batch or self._stopping.is_set():
                return total

    async def checkpoint(self) -> tuple[CheckpointView, bool]:
        """Integrate, then sign the tree as it stands (idempotent for an unchanged tree)."""
        await self.integrate()
        async with sequencing_session(self.engine) as session:
            assert session is not None
            view, created = await checkpoints.create(
                session, ring=self.keys.current(), origin=self.origin, now=self.clock.now()
            )
        if self.witnesses:
            # After the checkpoint's commit, and outside the sequencing lock: a witness
            # that is slow holds up nothing but its own cosignature.
            async with self._writes() as session, session.begin():
                if await cosigning.collect(session, self.witnesses, view, now=self.clock.now()):
                    view = await checkpoints.at_size(session, view.tree_size)
        return view, created

    def start(self, *, sequencer: bool = True) -> None:
        self.writer.start()
        if sequencer and self._task is None:
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
                await self.integrate(full_sweep=sweep, wait=False)
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
        async with self._reads() as session:
            size = await tree_size(session)
            signed = await checkpoints.latest(session)
        signed_size = 0 if signed is None else signed.tree_size
        if size == signed_size:  # nothing new (and an empty tree is not worth signing)
            return False
        return size - signed_size >= self._every_leaves or elapsed >= self._every_seconds
