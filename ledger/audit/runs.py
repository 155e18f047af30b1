"""Whole-log verification as a job: one at a time, with its progress kept as it goes.

A verification of a large log takes a while (about a minute per million events:
docs/benchmarks.md), so neither the console nor the CLI holds a request open for it.

- ``start`` takes the one running slot (a partial unique index on the ``running``
  state): a second start while one runs is refused with a ``Conflict``.
- ``run`` checks the log on a snapshot and writes how far it has got about once a
  second; the end is recorded in the audit log (``audit:log:verified``) and kept with
  the run, as are the first problems found.
- A run whose process died stops writing its heartbeat; once that is a minute old, the
  next ``start`` marks it failed ("interrupted") and takes the slot.

The console (``/console/integrity``) shows the latest runs, refreshing itself while one
is in progress; ``ledger audit verify`` prints the same progress as it goes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledger.access.keys import KeyRing
from ledger.audit import verify
from ledger.audit.events import AuditEvent
from ledger.audit.models import AuditLeaf, VerificationRun
from ledger.clock import Clock
from ledger.context import Operation
from ledger.errors import Conflict, NotFound
from ledger.i18n import N_

HEARTBEAT_SECONDS = 1.0
STALE_AFTER = dt.timedelta(seconds=60)
KEPT_PROBLEMS = 20


class RunState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RunView:
    id: int
    state: RunState
    started_by: str
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    finished_at: dt.datetime | None
    checked: int
    total: int
    ok: bool | None
    result: dict[str, Any] | None
    audit_event_id: int | None

    @property
    def percent(self) -> float:
        return min(100.0, 100.0 * self.checked / self.total) if self.total else 100.0

    @property
    def rate(self) -> float:
        """Leaves checked a second, so far."""
        end = self.finished_at or self.heartbeat_at
        seconds = (end - self.started_at).total_seconds()
        return self.checked / seconds if seconds > 0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        if self.state is not RunState.RUNNING or self.rate <= 0:
            return None
        return max(0.0, (self.total - self.checked) / self.rate)

    @property
    def problems(self) -> list[str]:
        return list((self.result or {}).get("problems", []))

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.id,
            "state": self.state.value,
            "checked": self.checked,
            "total": self.total,
            "percent": round(self.percent, 1),
            "rate": round(self.rate, 1),
            "seconds_left": None if self.seconds_left is None else round(self.seconds_left, 1),
        }


def _view(row: VerificationRun) -> RunView:
    return RunView(
        id=row.id,
        state=RunState(row.state),
        started_by=row.started_by,
        started_at=row.started_at,
        heartbeat_at=row.heartbeat_at,
        finished_at=row.finished_at,
        checked=row.checked,
        total=row.total,
        ok=row.ok,
        result=json.loads(row.result) if row.result else None,
        audit_event_id=row.audit_event_id,
    )


async def start(
    sessionmaker: async_sessionmaker[AsyncSession], *, by: str, clock: Clock
) -> RunView:
    """Take the running slot for a new run (letting go of one that stopped writing)."""
    now = clock.now()
    async with sessionmaker() as session, session.begin():
        await session.execute(
            sa.update(VerificationRun)
            .where(
                VerificationRun.state == RunState.RUNNING.value,
                VerificationRun.heartbeat_at < now - STALE_AFTER,
            )
            .values(
                state=RunState.FAILED.value,
                finished_at=now,
                result=json.dumps({"error": "interrupted: its process stopped"}),
            )
        )
        total = await session.scalar(sa.select(sa.func.count()).select_from(AuditLeaf))
    try:
        async with sessionmaker() as session, session.begin():
            row = VerificationRun(
                state=RunState.RUNNING.value,
                started_by=by[:100],
                started_at=now,
                heartbeat_at=now,
                checked=0,
                total=int(total or 0),
            )
            session.add(row)
            await session.flush()
            return _view(row)
    except IntegrityError:
        raise Conflict(
            N_("a verification is already running: wait for it to finish"),
            current_state=RunState.RUNNING.value,
        ) from None


async def get(sessionmaker: async_sessionmaker[AsyncSession], run_id: int) -> RunView:
    async with sessionmaker() as session:
        row = await session.get(VerificationRun, run_id)
        if row is None:
            raise NotFound("no such verification run")
        return _view(row)


async def latest(sessionmaker: async_sessionmaker[AsyncSession], limit: int = 10) -> list[RunView]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            sa.select(VerificationRun).order_by(VerificationRun.id.desc()).limit(limit)
        )
        return [_view(r) for r in rows]


ProgressHook = Callable[[RunView], Awaitable[None]]


async def run(
    run_id: int,
    *,
    snapshot: async_sessionmaker[AsyncSession],
    sessionmaker: async_sessionmaker[AsyncSession],
    op: Operation,
    record: Callable[[AuditEvent], Awaitable[int]],
    clock: Clock,
    ring: KeyRing,
    origin: str,
    kept: Sequence[verify.Kept] = (),
    on_progress: ProgressHook | None = None,
) -> verify.Report:
    """Check the log for run ``run_id`` as ``op``, and ``record`` the result (the
    console's audit writer; the CLI's own transaction). Progress is written about once
    a second, and ``on_progress`` (the CLI's display) hears it at the same moment."""
    last = time.monotonic()

    async def progress(checked: int) -> None:
        nonlocal last
        if time.monotonic() - last < HEARTBEAT_SECONDS:
            return
        last = time.monotonic()
        view = await _write(sessionmaker, run_id, checked=checked, now=clock.now())
        if on_progress is not None:
            await on_progress(view)

    try:
        async with snapshot() as session:
            report = await verify.verify(
                session, ring=ring, origin=origin, now=op.now, kept=kept, progress=progress
            )
    except BaseException as exc:  # recorded as failed, then raised on (cancellation too)
        with contextlib.suppress(Exception):  # if even that fails, the heartbeat goes stale
            await _write(
                sessionmaker,
                run_id,
                now=clock.now(),
                state=RunState.FAILED,
                result={"error": type(exc).__name__},
            )
        raise
    event_id = await record(verify.verified_event(op, report))
    view = await _write(
        sessionmaker,
        run_id,
        now=clock.now(),
        checked=report.leaves,
        state=RunState.DONE,
        ok=report.ok,
        event_id=event_id,
        result={
            "leaves": report.leaves,
            "events": report.events,
            "checkpoints": report.checkpoints,
            "pending": report.pending,
            "seconds": round(report.seconds, 3),
            "problems": [p.what for p in report.problems[:KEPT_PROBLEMS]],
        },
    )
    if on_progress is not None:
        await on_progress(view)
    return report


async def _write(
    sessionmaker: async_sessionmaker[AsyncSession],
    run_id: int,
    *,
    now: dt.datetime,
    checked: int | None = None,
    state: RunState | None = None,
    ok: bool | None = None,
    event_id: int | None = None,
    result: dict[str, Any] | None = None,
) -> RunView:
    async with sessionmaker() as session, session.begin():
        row = await session.get(VerificationRun, run_id)
        if row is None:
            raise NotFound("no such verification run")
        row.heartbeat_at = now
        if checked is not None:
            row.checked = checked
        if state is not None and state is not RunState.RUNNING:
            row.state, row.finished_at = state.value, now
            row.ok, row.audit_event_id = ok, event_id
            row.result = json.dumps(result) if result is not None else None
        await session.flush()
        return _view(row)
