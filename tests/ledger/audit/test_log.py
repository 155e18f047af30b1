"""Recording, append-only enforcement, group commit, sequencing and checkpoints."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from refund_ledger_client import merkle
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.keys import KeyRing
from ledger.audit import notes
from ledger.audit.events import Actor, AuditEvent
from ledger.audit.log import PG_COLUMNS, AuditWriter, PostgresSink, SessionSink, record, sink_for
from ledger.audit.models import AuditCheckpoint, AuditEventRow, AuditLeaf, AuditNode
from ledger.audit.sequencer import Sequencer, stored_event
from ledger.audit.service import AuditLog, sequencing_session
from ledger.audit.tags import Outcome, Tag
from ledger.audit.tree import root_hash, tree_size
from ledger.db import create_engine, create_sessionmaker
from ledger.errors import Unavailable
from ledger.runtime import Runtime

EVENT = AuditEvent(tag=Tag.AUDIT_PROOF_READ, actor=Actor.system(), body={"n": 1})


def event(n: int, subject: str | None = None) -> AuditEvent:
    return AuditEvent(
        tag=Tag.AUDIT_PROOF_READ, actor=Actor.system(), subject=subject, body={"n": n}
    )


async def leaves_in_order(session: AsyncSession) -> list[int]:
    rows = await session.scalars(sa.select(AuditLeaf.event_id).order_by(AuditLeaf.leaf_index))
    return list(rows)


async def expected_root(session: AsyncSession) -> bytes:
    """The root recomputed from the events, in leaf order, without the stored nodes."""
    tree = merkle.MemoryTree()
    rows = await session.execute(
        sa.select(AuditEventRow)
        .join(AuditLeaf, AuditLeaf.event_id == AuditEventRow.id)
        .order_by(AuditLeaf.leaf_index)
    )
    for (row,) in rows:
        tree.append_data(stored_event(row).canonical_bytes())
    return tree.root()


@pytest.fixture
async def read(runtime: Runtime) -> AsyncIterator[AsyncSession]:
    async with runtime.read_sessionmaker() as session:
        yield session


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET outcome = 'failed'",
        "DELETE FROM audit_events",
        "UPDATE audit_leaves SET event_id = event_id",
        "DELETE FROM audit_leaves",
        "DELETE FROM audit_nodes",
        "UPDATE audit_checkpoints SET note = ''",
        "DELETE FROM audit_checkpoints",
    ],
)
async def test_the_database_refuses_to_rewrite_the_audit_log(
    runtime: Runtime, statement: str
) -> None:
    await runtime.audit.writer.write(EVENT)
    await runtime.audit.checkpoint()
    async with runtime.engine.connect() as conn:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            await conn.execute(sa.text(statement))


async def test_truncate_is_refused_on_postgresql(runtime: Runtime, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    async with runtime.engine.connect() as conn:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            await conn.execute(sa.text("TRUNCATE audit_events CASCADE"))


async def test_an_event_recorded_in_a_rolled_back_transaction_does_not_exist(
    runtime: Runtime, read: AsyncSession
) -> None:
    async with runtime.sessionmaker() as session:
        await record(session, EVENT, now=runtime.clock.now())
        await session.rollback()
    assert await read.scalar(sa.select(sa.func.count()).select_from(AuditEventRow)) == 0


async def test_group_commit_gathers_concurrent_events_and_returns_durable_ids(
    runtime: Runtime, read: AsyncSession
) -> None:
    writer = runtime.audit.writer
    before = writer.batches
    ids = await asyncio.gather(*(writer.write(event(n)) for n in range(200)))
    assert len(set(ids)) == 200
    assert writer.batches - before < 200  # several events per commit
    stored = dict((await read.execute(sa.select(AuditEventRow.id, AuditEventRow.body))).all())
    # Each write got the id of its own event, not merely one of the batch's ids.
    assert [stored[i] for i in ids] == [f'{{"n":{n}}}' for n in range(200)]


def test_the_writer_uses_the_array_insert_on_postgresql(runtime: Runtime, backend: str) -> None:
    sink = sink_for(runtime.engine)
    assert isinstance(sink, PostgresSink if backend == "postgresql" else SessionSink)
    # The array insert names every column but the id, in the order the rows give them.
    table_columns = [c.name for c in AuditEventRow.__table__.columns if c.name != "id"]
    assert list(PG_COLUMNS) == table_columns


@pytest.mark.parametrize("sink", ["array", "session"])
async def test_a_failed_audit_commit_fails_every_waiting_read(runtime: Runtime, sink: str) -> None:
    # A writer whose database is unreachable: nothing may be answered unaudited.
    engine = create_engine("postgresql+asyncpg://ledger@127.0.0.1:1/ledger")
    writer = AuditWriter(
        PostgresSink("postgresql://ledger@127.0.0.1:1/ledger")
        if sink == "array"
        else SessionSink(create_sessionmaker(engine)),
        clock=runtime.clock,
    )
    writer.start()
    try:
        results = await asyncio.gather(
            *(writer.write(event(n)) for n in range(5)), return_exceptions=True
        )
    finally:
        await writer.stop()
        await engine.dispose()
    assert all(isinstance(r, Unavailable) for r in results)


async def test_sequencing_makes_contiguous_leaves_whose_root_matches_the_events(
    runtime: Runtime, read: AsyncSession
) -> None:
    ids = [await runtime.audit.writer.write(event(n)) for n in range(37)]
    assert await runtime.audit.integrate() == 37
    assert await runtime.audit.integrate() == 0  # nothing twice
    assert await leaves_in_order(read) == sorted(ids)
    size = await tree_size(read)
    assert size == 37
    nodes = await read.scalar(sa.select(sa.func.count()).select_from(AuditNode))
    assert nodes == 37 + 18 + 9 + 4 + 2 + 1  # every perfect subtree of 37 leaves
    assert await root_hash(read, size) == await expected_root(read)


async def test_events_committed_out_of_id_order_are_neither_skipped_nor_doubled(
    runtime: Runtime, read: AsyncSession, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: ids always commit in order")
    # A takes an id and stays open; B takes the next id and commits first.
    sessions = create_sessionmaker(runtime.engine)
    async with sessions() as slow:
        slow_id = await record(slow, event(1), now=runtime.clock.now())
        fast_id = await runtime.audit.writer.write(event(2))
        assert fast_id > slow_id
        assert await runtime.audit.integrate() == 1
        assert await leaves_in_order(read) == [fast_id]
        await slow.commit()
    # The gap is younger than the grace period: the floor waited below it.
    assert await runtime.audit.integrate() == 1
    assert await leaves_in_order(read) == [fast_id, slow_id]
    assert await runtime.audit.integrate(full_sweep=True) == 0


async def test_a_late_event_past_the_grace_period_is_caught_by_the_full_sweep(
    runtime: Runtime, read: AsyncSession, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: ids always commit in order")
    runtime.audit.sequencer.grace = runtime.audit.sequencer.grace * 0  # give up at once
    sessions = create_sessionmaker(runtime.engine)
    async with sessions() as slow:
        slow_id = await record(slow, event(1), now=runtime.clock.now())
        fast_id = await runtime.audit.writer.write(event(2))
        await runtime.audit.integrate()
        await runtime.audit.integrate()  # the floor moves past the (young) gap
        await slow.commit()
    assert await runtime.audit.integrate() == 0  # below the floor: not seen...
    assert await runtime.audit.integrate(full_sweep=True) == 1  # ...until the sweep
    assert await leaves_in_order(read) == [fast_id, slow_id]


async def test_two_concurrent_sequencers_never_integrate_twice(
    runtime: Runtime, read: AsyncSession
) -> None:
    for n in range(300):
        await runtime.audit.writer.write(event(n))
    other = Sequencer()  # as another API process would have

    async def one_pass(sequencer: Sequencer) -> int:
        async with sequencing_session(runtime.engine, wait=False) as session:
            return 0 if session is None else await sequencer.integrate(session)

    passes = [one_pass(s) for s in (runtime.audit.sequencer, other) * 3]
    await asyncio.gather(*passes, runtime.audit.integrate(), runtime.audit.integrate())
    await runtime.audit.integrate()
    leaves = await leaves_in_order(read)
    assert len(leaves) == len(set(leaves)) == 300


async def test_checkpoints_are_signed_notes_over_the_tree(
    runtime: Runtime, read: AsyncSession, settings: object
) -> None:
    for n in range(5):
        await runtime.audit.writer.write(event(n))
    checkpoint, created = await runtime.audit.checkpoint()
    assert created
    assert checkpoint.tree_size == 5
    again, created_again = await runtime.audit.checkpoint()
    assert not created_again
    assert again == checkpoint

    key = KeyRing.load(runtime.audit.keys.directory).signing_key
    text = notes.open_note(checkpoint.note, "refund-ledger/audit", key.public_key)
    parsed = notes.parse_checkpoint(text)
    assert parsed.tree_size == 5
    assert parsed.root_hash == checkpoint.root_hash == await expected_root(read)
    assert text.splitlines()[2] == base64.b64encode(checkpoint.root_hash).decode()
    stored = await read.get(AuditCheckpoint, 5)
    assert stored is not None
    assert stored.key_id == key.kid


def test_a_note_signature_fails_on_any_change() -> None:
    key = Ed25519PrivateKey.generate()
    signed = notes.sign("example.org/log\n4\nAAAA\n", "example.org/log", key)
    assert (
        notes.open_note(signed, "example.org/log", key.public_key()) == "example.org/log\n4\nAAAA\n"
    )
    with pytest.raises(notes.NoteError):
        notes.open_note(signed.replace("\n4\n", "\n5\n"), "example.org/log", key.public_key())
    with pytest.raises(notes.NoteError):
        notes.open_note(signed, "example.org/log", Ed25519PrivateKey.generate().public_key())
    name, public = notes.parse_verifier_key(notes.verifier_key("example.org/log", key.public_key()))
    assert name == "example.org/log"
    assert public.public_bytes_raw() == key.public_key().public_bytes_raw()


async def test_refused_token_requests_are_recorded(
    client: httpx.AsyncClient, runtime: Runtime, read: AsyncSession
) -> None:
    response = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("cl_unknown", "lsk_x")
    )
    assert response.status_code == 401
    row = await read.scalar(sa.select(AuditEventRow).where(AuditEventRow.tag == Tag.TOKEN_REFUSED))
    assert row is not None
    assert row.outcome == Outcome.REFUSED
    assert "cl_unknown" not in row.body
    assert row.request_id == response.headers["x-request-id"]


async def test_the_background_loop_integrates_and_checkpoints_by_itself(
    runtime: Runtime, read: AsyncSession
) -> None:
    for n in range(3):
        await runtime.audit.writer.write(event(n))
    loop = AuditLog(
        engine=runtime.engine,
        clock=runtime.clock,
        keys=runtime.audit.keys,
        origin="refund-ledger/audit",
        checkpoint_every_leaves=2,
        interval_seconds=0.05,
    )
    loop.start()
    try:
        for _ in range(200):
            if await read.get(AuditCheckpoint, 3) is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        await loop.stop()
    assert await tree_size(read) == 3
    assert await read.get(AuditCheckpoint, 3) is not None
