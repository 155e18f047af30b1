"""`verify` finds what an attacker with database access did, and names the event."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from refund_ledger_client import merkle
from sqlalchemy.engine import make_url

from ledger.access.keys import KeyRing
from ledger.audit.events import Actor, AuditEvent
from ledger.audit.models import AuditEventRow, AuditLeaf
from ledger.audit.sequencer import stored_event
from ledger.audit.tags import Tag
from ledger.audit.verify import Report, verify
from ledger.db import create_snapshot_sessionmaker
from ledger.runtime import Runtime
from tests.tampering import tamper


@pytest.fixture
async def log(runtime: Runtime) -> list[int]:
    """20 events in two checkpoints (10 and 20); returns the event ids in leaf order."""
    ids = []
    for checkpoint in range(2):
        for n in range(10):
            event = AuditEvent(
                tag=Tag.AUDIT_PROOF_READ,
                actor=Actor.system(),
                subject=f"subject-{checkpoint}-{n}",
                body={"n": n},
            )
            ids.append(await runtime.audit.writer.write(event))
        await runtime.audit.checkpoint()
    return ids


async def run_verify(runtime: Runtime) -> Report:
    async with create_snapshot_sessionmaker(runtime.engine)() as session:
        return await verify(
            session,
            ring=KeyRing.load(runtime.audit.keys.directory),
            origin=runtime.settings.audit_origin,
            now=runtime.clock.now(),
        )


async def test_an_untouched_log_verifies(runtime: Runtime, log: list[int]) -> None:
    report = await run_verify(runtime)
    assert report.ok, report.problems
    assert (report.leaves, report.events, report.checkpoints) == (20, 20, 2)


async def test_an_altered_event_is_named(
    runtime: Runtime, log: list[int], database_url: str
) -> None:
    target = log[13]
    await tamper(
        database_url, [f"UPDATE audit_events SET subject = 'someone-else' WHERE id = {target}"]
    )
    report = await run_verify(runtime)
    assert not report.ok
    assert report.first is not None
    assert report.first.event_id == target
    assert report.first.leaf_index == 13
    assert "content was changed" in report.first.what


async def test_a_deleted_event_is_named(
    runtime: Runtime, log: list[int], database_url: str
) -> None:
    target = log[4]
    await tamper(database_url, [f"DELETE FROM audit_events WHERE id = {target}"])
    report = await run_verify(runtime)
    assert report.first is not None
    assert report.first.event_id == target
    assert "deleted" in report.first.what


async def test_two_swapped_events_are_named_first_in_leaf_order(
    runtime: Runtime, log: list[int], database_url: str
) -> None:
    a, b = log[6], log[15]
    await tamper(
        database_url,
        [
            f"UPDATE audit_events SET subject = 'tmp' WHERE id = {a}",
            f"UPDATE audit_events SET subject = 'subject-0-6' WHERE id = {b}",
            f"UPDATE audit_events SET subject = 'subject-1-5' WHERE id = {a}",
        ],
    )
    report = await run_verify(runtime)
    named = [p.event_id for p in report.problems if p.event_id is not None]
    assert named == [a, b]
    # The signed roots over the changed leaves no longer match either.
    assert {p.tree_size for p in report.problems if p.tree_size} == {10, 20}


async def test_swapped_leaves_are_found(
    runtime: Runtime, log: list[int], database_url: str
) -> None:
    a, b = log[2], log[3]
    await tamper(
        database_url,
        [
            "UPDATE audit_leaves SET event_id = -1 WHERE leaf_index = 2",
            f"UPDATE audit_leaves SET event_id = {a} WHERE leaf_index = 3",
            f"UPDATE audit_leaves SET event_id = {b} WHERE leaf_index = 2",
        ],
    )
    report = await run_verify(runtime)
    assert report.first is not None
    assert report.first.leaf_index == 2
    assert report.first.event_id == b


async def test_a_rewrite_that_also_fixes_the_stored_hash_breaks_the_signed_checkpoint(
    runtime: Runtime, log: list[int], database_url: str
) -> None:
    target = log[3]
    await tamper(database_url, [f"UPDATE audit_events SET subject = 'forged' WHERE id = {target}"])
    async with runtime.read_sessionmaker() as session:
        row = await session.get(AuditEventRow, target)
        assert row is not None
        forged = merkle.leaf_hash(stored_event(row).canonical_bytes())
    await tamper(
        database_url,
        [
            f"UPDATE audit_nodes SET hash = {_bytes_literal(database_url, forged)} "
            "WHERE level = 0 AND idx = 3"
        ],
    )
    report = await run_verify(runtime)
    assert report.first is not None
    # Named by event: the stored node over the rewritten event and its neighbour no
    # longer matches their stored hashes; and the signed root no longer matches.
    assert report.first.event_id == log[3]
    assert f"event {log[2]} or event {log[3]}" in report.first.what
    assert any(p.tree_size == 10 and "rewritten" in p.what for p in report.problems)


async def test_a_forged_checkpoint_is_refused(
    runtime: Runtime, log: list[int], database_url: str
) -> None:
    await tamper(
        database_url, ["UPDATE audit_checkpoints SET note = replace(note, '\n20\n', '\n21\n')"]
    )
    report = await run_verify(runtime)
    assert report.first is not None
    assert report.first.tree_size == 20
    assert "does not verify" in report.first.what


async def test_an_event_never_integrated_is_reported_after_the_grace_period(
    runtime: Runtime, log: list[int]
) -> None:
    late = await runtime.audit.writer.write(
        AuditEvent(tag=Tag.AUDIT_PROOF_READ, actor=Actor.system())
    )
    report = await run_verify(runtime)
    assert report.ok
    assert report.pending == 1
    runtime.clock.advance(dt.timedelta(hours=1))  # type: ignore[attr-defined]
    report = await run_verify(runtime)
    assert report.first is not None
    assert report.first.event_id == late
    assert "never integrated" in report.first.what


def _bytes_literal(database_url: str, value: bytes) -> str:
    if make_url(database_url).get_backend_name() == "sqlite":
        return f"X'{value.hex()}'"
    return f"'\\x{value.hex()}'::bytea"


async def test_leaves_point_at_their_events(runtime: Runtime, log: list[int]) -> None:
    async with runtime.read_sessionmaker() as session:
        leaves = list(
            await session.scalars(sa.select(AuditLeaf.event_id).order_by(AuditLeaf.leaf_index))
        )
    assert leaves == log
