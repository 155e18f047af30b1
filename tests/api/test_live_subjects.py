"""The live subjects (ledger/scoring/live.py): a subject with nothing that may count is
answered without a read, and that answer is the full path's, on both databases; every
process learns of a change from PostgreSQL's notification."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa

from ledger.clock import FrozenClock
from ledger.db import postgres_dsn
from ledger.reports.models import Report
from ledger.reports.policy import State
from ledger.runtime import Runtime
from ledger.scoring.live import (
    APPLICATION_NAME,
    SNAPSHOT,
    LiveListener,
    LiveSubjects,
    key_of,
    parse_copy,
    read_portable,
    sorted_set,
)
from ledger.scoring.service import HeldReports, PostgresReports, SessionReports, SubjectRows
from tests.api.test_disputes_and_subjects import open_dispute, resolution_path
from tests.api.test_hot_path import terminate
from tests.api.test_operations import _samples
from tests.api.test_reports import DAY, Member, digest, payload, pseudonym
from tests.api.test_risk import query

# What each kind of subject is: True if nothing of it can count (answered without a read).
KINDS = {
    "never reported": True,
    "counting": False,
    "pending notice": False,
    "disputed": False,
    "withdrawn": True,
    "suppressed": True,
    "expired": True,
    "purged": True,
    "withdrawn and counting": False,
    "marked": False,
    "marker removed": True,
}


async def _set_report(runtime: Runtime, report_id: str, **values: Any) -> None:
    async with runtime.sessionmaker() as session, session.begin():
        await session.execute(
            sa.update(Report).where(Report.id == uuid.UUID(report_id)).values(**values)
        )


async def _arrange(
    acme: Member, shop: Member, runtime: Runtime, clock: FrozenClock
) -> dict[str, str]:
    subjects = {kind: pseudonym() for kind in KINDS}

    async def file(kind: str, **overrides: Any) -> dict[str, Any]:
        return await acme.file(payload(clock, subject=subjects[kind], **overrides))

    await file("counting")
    await file("pending notice", subject_notified_at=None)
    disputed = await shop.file(payload(clock, subject=subjects["disputed"]))
    await open_dispute(shop, subjects["disputed"], disputed["id"])
    for kind in ("withdrawn", "withdrawn and counting"):
        report = await file(kind)
        withdrawn = await acme.post(f"/v1/reports/{report['id']}/withdrawal", {"reason": "other"})
        assert withdrawn.status_code == 200, withdrawn.text
    await shop.file(payload(clock, subject=subjects["withdrawn and counting"]))
    await _set_report(runtime, (await file("suppressed"))["id"], state="suppressed")
    expired = await file("expired")
    await _set_report(runtime, expired["id"], expires_at=clock.now() - DAY)
    await _set_report(runtime, (await file("purged"))["id"], state="purged")
    for kind in ("marked", "marker removed"):
        placed = await acme.post(
            "/v1/subjects/markers", {"subject": subjects[kind], "reference": "ticket-1"}
        )
        assert placed.status_code == 201, placed.text
    removed = await acme.post(
        f"/v1/subjects/markers/{placed.json()['id']}/removal",
        {"subject": subjects["marker removed"], "reference": "t-2", "at_buyers_request": True},
    )
    assert removed.status_code == 200, removed.text
    return subjects


async def _caught_up(runtime: Runtime, dsn: str) -> None:
    """Every notification sent so far has reached this process's set and was read."""
    listener = runtime.live_listener
    assert listener is not None
    sentinel = pseudonym()
    conn = await asyncpg.connect(dsn)
    try:  # delivered after every notification committed before it
        await conn.execute("SELECT pg_notify('ledger_subjects', $1)", sentinel)
    finally:
        await conn.close()
    deadline = time.monotonic() + 10
    while key_of(sentinel) not in listener.live._changed:
        assert time.monotonic() < deadline, "the notification never arrived"
        await asyncio.sleep(0.005)
    await asyncio.wait_for(listener.settled.wait(), timeout=10)


async def _answers(acme: Member, subject: str) -> dict[str, Any]:
    response = await acme.post("/v1/risk/query", query(subject))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    answer.pop("audit_event_id")
    return answer


async def test_the_answer_without_a_read_is_the_full_paths_answer(
    acme: Member, shop: Member, runtime: Runtime, clock: FrozenClock
) -> None:
    subjects = await _arrange(acme, shop, runtime, clock)
    dsn = postgres_dsn(runtime.settings.resolved_database_url)
    if dsn is None:  # SQLite: no notifications to keep one current, so it is loaded here
        async with runtime.read_sessionmaker() as read:
            keys, until = await read_portable(read)
        live = LiveSubjects()
        live.load(keys, until, since=0)
        live.enabled = True
        runtime.risk.live = live
    else:  # PostgreSQL: the server's own set, loaded at start and kept by notifications
        await _caught_up(runtime, dsn)
        assert runtime.risk.live is not None
        live = runtime.risk.live
    assert live.enabled
    now = clock.now().timestamp()
    fast = {kind: await _answers(acme, s) for kind, s in subjects.items()}
    runtime.risk.live = None  # every query reads and scores
    full = {kind: await _answers(acme, s) for kind, s in subjects.items()}
    for kind, subject in subjects.items():
        assert live.may_count(subject, now) is not KINDS[kind], kind
        assert fast[kind] == full[kind], kind
    # And the cases differ where they should: the set is not simply answering "clean".
    assert full["counting"]["score"] > 0
    assert full["marked"]["protective_marker"] is not None
    never = {k: v for k, v in full["never reported"].items() if k != "subject"}
    for kind, clean in KINDS.items():
        if clean:
            assert {k: v for k, v in full[kind].items() if k != "subject"} == never, kind


async def test_the_copy_load_is_the_portable_read(
    acme: Member, shop: Member, runtime: Runtime, clock: FrozenClock
) -> None:
    dsn = postgres_dsn(runtime.settings.resolved_database_url)
    if dsn is None:
        pytest.skip("COPY is PostgreSQL's; SQLite is read the portable way")
    await _arrange(acme, shop, runtime, clock)
    conn = await asyncpg.connect(dsn)
    try:
        buffer = _Buffer()
        copied = await conn.copy_from_query(SNAPSHOT, output=buffer.write, format="binary")
    finally:
        await conn.close()
    assert copied.startswith("COPY ")
    keys, until = sorted_set(*parse_copy(buffer.data))
    async with runtime.read_sessionmaker() as read:
        portable = await read_portable(read)
    assert len(keys) == 6  # the five kinds that may count, and the expired (cut by time)
    assert (keys, until) == portable


class _Buffer:
    def __init__(self) -> None:
        self.data = b""

    async def write(self, chunk: bytes) -> None:
        self.data += chunk


async def test_a_report_expiring_needs_no_write_to_leave_the_set(
    acme: Member, runtime: Runtime, clock: FrozenClock
) -> None:
    dsn = postgres_dsn(runtime.settings.resolved_database_url)
    if dsn is None:
        pytest.skip("SQLite has no live set: every query reads")
    report = await acme.file(payload(clock))
    await _caught_up(runtime, dsn)
    live = runtime.risk.live
    assert live is not None
    expires = dt.datetime.fromisoformat(report["expires_at"])
    assert live.may_count(report["subject"], (expires - dt.timedelta(seconds=1)).timestamp())
    assert not live.may_count(report["subject"], expires.timestamp() + 1)
    clock.set(expires + dt.timedelta(seconds=1))
    await acme.relogin()
    answer = await _answers(acme, report["subject"])
    assert (answer["score"], answer["reasons"]) == (0, [])


async def test_the_filing_process_reads_the_subject_before_any_notification(
    acme: Member, runtime: Runtime, clock: FrozenClock
) -> None:
    listener = runtime.live_listener
    if listener is None:
        pytest.skip("SQLite has no live set: every query reads")
    listener._on_notify = lambda _payload: None
    subject = pseudonym()
    assert runtime.risk.live is not None
    assert not runtime.risk.live.may_count(subject, clock.now().timestamp())
    await acme.file(payload(clock, subject=subject))
    assert (await _answers(acme, subject))["score"] > 0


async def test_every_process_sees_a_change_within_the_notifications_delay(
    acme: Member, runtime: Runtime, clock: FrozenClock
) -> None:
    dsn = postgres_dsn(runtime.settings.resolved_database_url)
    if dsn is None:
        pytest.skip("SQLite has no notifications: every query reads")
    # Another server process: its own set, its own listening connection, its own pool.
    other_live, other_reads = LiveSubjects(), PostgresReports(dsn, size=1)
    other = LiveListener(dsn, other_live, other_reads.connection)
    other.start()
    try:
        await asyncio.wait_for(other.listening(), timeout=10)
        subject = pseudonym()
        now = clock.now().timestamp()
        assert not other_live.may_count(subject, now)
        report = await acme.file(payload(clock, subject=subject))
        await _until(lambda: other_live.may_count(subject, now))
        withdrawn = await acme.post(f"/v1/reports/{report['id']}/withdrawal", {"reason": "other"})
        assert withdrawn.status_code == 200
        await _until(lambda: not other_live.may_count(subject, now))
        assert runtime.risk.live is not None
        live = runtime.risk.live
        await _until(lambda: not live.may_count(subject, now))
    finally:
        await other.stop()
        await other_reads.close()


async def _until(condition: Any, within: float = 10.0) -> None:
    """Wait for ``condition()``; the documented delay is the notification's (milliseconds),
    and a loaded machine gets ten seconds before this fails."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the change did not arrive"
        await asyncio.sleep(0.005)


async def test_a_bulk_load_reads_the_whole_set_again(
    acme: Member, runtime: Runtime, clock: FrozenClock
) -> None:
    dsn = postgres_dsn(runtime.settings.resolved_database_url)
    if dsn is None or runtime.risk.live is None:
        pytest.skip("SQLite has no live set: every query reads")
    loads = runtime.risk.live.stats.loads
    listener = runtime.live_listener
    assert listener is not None
    batch = [payload(clock) for _ in range(150)]
    response = await acme.post("/v1/reports:batch", {"reports": batch})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 150
    await _until(lambda: runtime.risk.live is not None and runtime.risk.live.stats.loads > loads)
    await _caught_up(runtime, dsn)
    live = runtime.risk.live
    now = clock.now().timestamp()
    assert all(live.may_count(item["subject"], now) for item in batch)
    assert live.stats.loaded >= 150


async def test_a_lost_listener_turns_the_set_off_until_it_loads_again(
    acme: Member, runtime: Runtime, clock: FrozenClock
) -> None:
    dsn = postgres_dsn(runtime.settings.resolved_database_url)
    listener = runtime.live_listener
    if dsn is None or listener is None or runtime.risk.live is None:
        pytest.skip("SQLite has no live set: every query reads")
    live = runtime.risk.live
    loads = live.stats.loads
    assert await terminate(dsn, APPLICATION_NAME) == 1
    await _until(lambda: not live.enabled)
    subject = pseudonym()
    assert live.may_count(subject, clock.now().timestamp())  # off: every query reads
    await asyncio.wait_for(listener.listening(), timeout=10)
    assert live.enabled
    assert live.stats.loads == loads + 1
    assert not live.may_count(subject, clock.now().timestamp())


async def test_the_metrics_show_the_set_and_the_answers_given_without_a_read(
    client: httpx.AsyncClient, acme: Member, runtime: Runtime, clock: FrozenClock
) -> None:
    if runtime.risk.live is None or runtime.sampler is None:
        pytest.skip("SQLite has no live set: every query reads")
    await acme.file(payload(clock))
    await _answers(acme, pseudonym())  # never reported: no read
    runtime.sampler.sample()
    samples = _samples((await client.get("/metrics")).text)
    assert samples[("ledger_risk_live_subjects_off", ())] == 0
    assert samples[("ledger_risk_answered_without_read_total", ())] == 1
    assert samples[("ledger_risk_live_subjects", ())] == runtime.risk.live.stats.loaded
    runtime.risk.live.disable()
    runtime.sampler.sample()
    samples = _samples((await client.get("/metrics")).text)
    assert samples[("ledger_risk_live_subjects_off", ())] == 1


async def test_held_rows_give_the_full_paths_answer_as_time_passes(
    acme: Member, shop: Member, runtime: Runtime, clock: FrozenClock
) -> None:
    dsn = postgres_dsn(runtime.settings.resolved_database_url)
    live = runtime.risk.live
    if dsn is None or live is None:
        pytest.skip("SQLite has no notifications: every query reads")
    subjects = await _arrange(acme, shop, runtime, clock)
    expiring = await acme.file(
        payload(clock, occurred_at=(clock.now() - 5 * 365 * DAY + 2 * DAY).isoformat())
    )
    subjects["expires in a day"] = expiring["subject"]
    await _caught_up(runtime, dsn)
    for moment in (clock.now(), clock.now() + 3 * DAY):  # the second: one report expired
        clock.set(moment)
        await acme.relogin()
        first = {kind: await _answers(acme, s) for kind, s in subjects.items()}
        before = live.answered_from_held
        held = {kind: await _answers(acme, s) for kind, s in subjects.items()}
        # Every subject that may count was answered from what the first round held.
        may_count = [s for s in subjects.values() if live.may_count(s, moment.timestamp())]
        assert live.answered_from_held - before == len(may_count)
        runtime.risk.live = None  # every query reads and scores
        try:
            full = {kind: await _answers(acme, s) for kind, s in subjects.items()}
        finally:
            runtime.risk.live = live
        assert first == held == full
    assert full["expires in a day"]["score"] == 0  # it counted, and expired while held
    assert first["counting"]["score"] > 0


async def test_every_change_to_a_held_subject_reaches_every_process(
    acme: Member, shop: Member, runtime: Runtime, clock: FrozenClock
) -> None:
    """Another process holds the subject's rows; each kind of change must reach it within
    the notification's delay (the rows are compared with a fresh read after each)."""
    dsn = postgres_dsn(runtime.settings.resolved_database_url)
    if dsn is None:
        pytest.skip("SQLite has no notifications: every query reads")
    other_live, other_reads = LiveSubjects(held_capacity=100), PostgresReports(dsn, size=1)
    other = LiveListener(dsn, other_live, other_reads.connection)
    held = HeldReports(other_reads, other_live)
    subject = pseudonym()
    now = clock.now()

    async def fresh() -> SubjectRows:
        async with runtime.read_sessionmaker() as read:
            return await SessionReports(read).read(subject, now)

    async def seen(what: str) -> None:
        """Until the other process answers what the database holds from rows it holds
        (it reads the subject until its notification has been read)."""
        expected = await fresh()
        deadline = time.monotonic() + 10
        while True:
            before = other_live.answered_from_held
            answer = await held.read(subject, now)
            if answer == expected and other_live.answered_from_held == before + 1:
                return
            assert time.monotonic() < deadline, f"{what} did not reach the other process"
            await asyncio.sleep(0.005)

    other.start()
    try:
        await asyncio.wait_for(other.listening(), timeout=10)
        first = await acme.file(payload(clock, subject=subject))
        await seen("a filing")
        second = await shop.file(payload(clock, subject=subject, category="empty_box"))
        await seen("a second filing")
        dispute = await open_dispute(shop, subject, first["id"], second["id"])
        await seen("a dispute opened")
        assert sum(len(r.open_dispute_deadlines) for r in (await fresh()).reports) == 2
        upheld = await acme.post(
            resolution_path(dispute, first["id"]),
            {"outcome": "upheld", "reason_code": "evidence_rechecked", "evidence_sha256": digest()},
        )
        assert upheld.status_code == 200, upheld.text
        await seen("a dispute upheld")
        withdrawn = await shop.post(
            resolution_path(dispute, second["id"]),
            {"outcome": "withdrawn", "reason_code": "cannot_substantiate"},
        )
        assert withdrawn.status_code == 200, withdrawn.text
        await seen("a dispute answered by withdrawal")
        marker = await acme.post("/v1/subjects/markers", {"subject": subject, "reference": "t-1"})
        assert marker.status_code == 201, marker.text
        await seen("a marker placed")
        removed = await acme.post(
            f"/v1/subjects/markers/{marker.json()['id']}/removal",
            {"subject": subject, "reference": "t-2", "at_buyers_request": True},
        )
        assert removed.status_code == 200, removed.text
        await seen("a marker removed")
        gone = await acme.post(f"/v1/reports/{first['id']}/withdrawal", {"reason": "other"})
        assert gone.status_code == 200, gone.text
        await seen("a withdrawal")
        assert {r.state for r in (await fresh()).reports} == {State.WITHDRAWN}
    finally:
        await other.stop()
        await other_reads.close()


async def test_the_disputing_process_sees_its_dispute_before_any_notification(
    acme: Member, shop: Member, runtime: Runtime, clock: FrozenClock
) -> None:
    listener = runtime.live_listener
    if listener is None or runtime.risk.live is None:
        pytest.skip("SQLite has no live set: every query reads")
    report = await acme.file(payload(clock))
    dsn = postgres_dsn(runtime.settings.resolved_database_url)
    assert dsn is not None
    await _caught_up(runtime, dsn)
    listener._on_notify = lambda _payload: None  # from here on, no notification arrives
    subject = report["subject"]
    assert (await _answers(acme, subject))["counts"]["open_disputes"] == 0
    before = runtime.risk.live.answered_from_held
    assert (await _answers(acme, subject))["counts"]["open_disputes"] == 0
    assert runtime.risk.live.answered_from_held == before + 1  # held
    dispute = await open_dispute(shop, subject, report["id"])
    assert (await _answers(acme, subject))["counts"]["open_disputes"] == 1
    answered = await acme.post(
        resolution_path(dispute, report["id"]),
        {"outcome": "withdrawn", "reason_code": "cannot_substantiate"},
    )
    assert answered.status_code == 200, answered.text
    assert (await _answers(acme, subject))["score"] == 0


async def test_the_metrics_show_answers_from_held_rows(
    client: httpx.AsyncClient, acme: Member, runtime: Runtime, clock: FrozenClock
) -> None:
    dsn = postgres_dsn(runtime.settings.resolved_database_url)
    if dsn is None or runtime.risk.live is None or runtime.sampler is None:
        pytest.skip("SQLite has no live set: every query reads")
    report = await acme.file(payload(clock))
    await _caught_up(runtime, dsn)
    await _answers(acme, report["subject"])  # read, and held
    await _answers(acme, report["subject"])  # from held rows
    runtime.sampler.sample()
    samples = _samples((await client.get("/metrics")).text)
    assert samples[("ledger_risk_answered_from_held_total", ())] == 1
    assert samples[("ledger_risk_held_subjects", ())] == 1
