"""Whole-log verification as a job: one at a time, a dead run let go, progress written
as it goes, and the result kept and recorded."""

from __future__ import annotations

import datetime as dt

import pytest

from ledger.audit import runs, verify
from ledger.audit.log import record_many
from ledger.audit.models import AuditEventRow
from ledger.audit.tags import Tag
from ledger.clock import FrozenClock
from ledger.context import Operation
from ledger.db import create_snapshot_sessionmaker
from ledger.errors import Conflict
from ledger.runtime import Runtime
from tests.tampering import tamper


async def _events(runtime: Runtime, n: int) -> None:
    op = Operation.system(runtime.clock.now())
    async with runtime.sessionmaker() as session, session.begin():
        events = [op.event(Tag.POLICY_SET, body={"n": i}) for i in range(n)]
        await record_many(session, events, now=op.now)
    await runtime.audit.checkpoint()


async def _run(runtime: Runtime, run_id: int, seen: list[runs.RunView]) -> verify.Report:
    async def heard(view: runs.RunView) -> None:
        seen.append(view)

    return await runs.run(
        run_id,
        snapshot=create_snapshot_sessionmaker(runtime.engine),
        sessionmaker=runtime.sessionmaker,
        op=Operation.system(runtime.clock.now()),
        record=runtime.audit.writer.write,
        clock=runtime.clock,
        ring=runtime.audit.keys.current(),
        origin=runtime.audit.origin,
        on_progress=heard,
    )


async def test_one_run_at_a_time_and_a_dead_one_is_let_go(
    runtime: Runtime, clock: FrozenClock
) -> None:
    first = await runs.start(runtime.sessionmaker, by="console:audrey", clock=clock)
    with pytest.raises(Conflict, match="already running"):
        await runs.start(runtime.sessionmaker, by="cli", clock=clock)
    clock.advance(runs.STALE_AFTER + dt.timedelta(seconds=1))  # its process died
    second = await runs.start(runtime.sessionmaker, by="cli", clock=clock)
    dead = await runs.get(runtime.sessionmaker, first.id)
    assert dead.state is runs.RunState.FAILED
    assert dead.result == {"error": "interrupted: its process stopped"}
    assert (await runs.latest(runtime.sessionmaker))[0].id == second.id


async def test_a_run_writes_its_progress_and_keeps_its_result(
    runtime: Runtime, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify, "PROGRESS_EVERY", 50)
    monkeypatch.setattr(runs, "HEARTBEAT_SECONDS", 0.0)
    await _events(runtime, 400)
    started = await runs.start(runtime.sessionmaker, by="cli", clock=clock)
    assert (started.total, started.checked) == (400, 0)
    seen: list[runs.RunView] = []
    report = await _run(runtime, started.id, seen)
    assert report.ok
    assert [v.checked for v in seen[:-1]] == list(range(50, 401, 50))  # every 50 leaves
    assert all(v.state is runs.RunState.RUNNING for v in seen[:-1])
    done = await runs.get(runtime.sessionmaker, started.id)
    assert seen[-1] == done
    assert (done.state, done.ok, done.checked) == (runs.RunState.DONE, True, 400)
    assert done.result is not None
    assert (done.result["leaves"], done.result["problems"]) == (400, [])
    async with runtime.read_sessionmaker() as read:
        event = await read.get(AuditEventRow, done.audit_event_id)
    assert event is not None
    assert event.tag == Tag.AUDIT_VERIFIED.value
    again = await runs.start(runtime.sessionmaker, by="cli", clock=clock)  # the slot is free
    assert again.id > started.id


async def test_a_failed_verification_keeps_its_problems(
    runtime: Runtime, clock: FrozenClock
) -> None:
    await _events(runtime, 5)
    await tamper(
        runtime.settings.resolved_database_url,
        ["UPDATE audit_events SET outcome = 'refused' WHERE id = 2"],
    )
    started = await runs.start(runtime.sessionmaker, by="cli", clock=clock)
    report = await _run(runtime, started.id, [])
    assert not report.ok
    done = await runs.get(runtime.sessionmaker, started.id)
    assert (done.state, done.ok) == (runs.RunState.DONE, False)
    assert any("its content was changed" in p for p in done.problems)
