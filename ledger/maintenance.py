"""The periodic jobs that turn time-based rules into recorded, audited transitions:
unanswered disputes suppress their reports (and reporting members are reminded three
days before), un-noticed reports are suspended, and expired reports are erased to a
tombstone (spent rate-limit counters and old webhook events are deleted too).
Run by `ledger retention run` and, every minute, by the service. One run at a time
across processes (an advisory lock on PostgreSQL; SQLite's write lock)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledger import rate_limits
from ledger.clock import Clock
from ledger.context import Operation
from ledger.disputes import service as disputes
from ledger.reports import retention
from ledger.reports.policy import ReportPolicy
from ledger.webhooks import outbox

log = logging.getLogger("ledger.maintenance")

ADVISORY_LOCK_KEY = 0x4C45_4447_4553  # "LEDGES"


@dataclass(frozen=True, slots=True)
class MaintenanceResult:
    disputes_unanswered: int
    disputes_reminded: int
    reports_suspended: int
    reports_purged: int
    rate_counters_purged: int
    webhook_events_purged: int


async def run(
    sessionmaker: async_sessionmaker[AsyncSession], *, clock: Clock, policy: ReportPolicy
) -> MaintenanceResult | None:
    """One pass; None if another process is running one."""
    async with sessionmaker() as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            locked = await session.scalar(
                sa.select(sa.func.pg_try_advisory_xact_lock(ADVISORY_LOCK_KEY))
            )
            if not locked:
                return None
        op = Operation.system(clock.now())
        return MaintenanceResult(
            disputes_unanswered=await disputes.suppress_unanswered(session, op, policy=policy),
            disputes_reminded=await disputes.remind_near_deadline(session, op, policy=policy),
            reports_suspended=await retention.suspend_unnoticed(session, op, policy=policy),
            reports_purged=await retention.purge_expired(session, op, policy=policy),
            rate_counters_purged=await rate_limits.purge_expired(session),
            webhook_events_purged=await outbox.purge_old(session, op.now),
        )


class MaintenanceLoop:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        clock: Clock,
        policy: ReportPolicy,
        interval_seconds: float,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._policy = policy
        self._interval = interval_seconds
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="maintenance")

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping.set()
            await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await run(self._sessionmaker, clock=self._clock, policy=self._policy)
            except Exception as exc:  # noqa: BLE001  (the next pass retries)
                log.warning("maintenance pass failed", extra={"error": type(exc).__name__})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
