"""The sequencer: integrates committed audit events into the Merkle tree, in order.

Exactly one integration runs at a time: on PostgreSQL the caller holds an advisory lock
(``AuditLog.integrate``), on SQLite the write lock every writing transaction takes.

Events are found by an anti-join (events with no leaf) above a bookmark, the *floor*:
every event with ``id <= floor`` is integrated. On PostgreSQL an id can become visible
after a higher one (its transaction committed later), so the floor only moves past a
missing id once it has been missing for ``grace`` (an id whose transaction rolled back
never appears). An event committed after its gap was passed is still found by the full
sweep, which runs at start and then periodically, and gets the next leaf: leaves are in
integration order, and no event is skipped or integrated twice.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import sqlalchemy as sa
from refund_ledger_client import merkle
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit.events import StoredEvent, spliced_bytes
from ledger.audit.models import (
    EVENT_COLUMNS,
    AuditEventRow,
    AuditLeaf,
    AuditNode,
    AuditSequencerState,
)
from ledger.audit.tree import fetch_nodes, frontier_keys, tree_size
from ledger.db import table_of

ADVISORY_LOCK_KEY = 0x4C45_4447_4552  # "LEDGER"

# PostgreSQL's path, on the session's own asyncpg connection (same transaction, same
# snapshot): the waiting events as the select below builds them, and the inserts.
_COLUMN_LIST = ", ".join(column.name for column in EVENT_COLUMNS)
_PG_WAITING = f"""
SELECT {_COLUMN_LIST}
FROM audit_events AS e
WHERE e.id > $1 AND NOT EXISTS (
    SELECT 1 FROM audit_leaves AS l WHERE l.event_id = e.id AND l.event_id > $1
)
ORDER BY e.id
LIMIT $2
"""  # noqa: S608  (the column names of our own model, no input)
_PG_LEAVES = """
INSERT INTO audit_leaves (leaf_index, event_id)
SELECT $1::bigint + n - 1, event_id FROM unnest($2::bigint[]) WITH ORDINALITY AS t(event_id, n)
"""
_PG_NODES = """
INSERT INTO audit_nodes (level, idx, hash)
SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])
"""


async def _asyncpg_connection(session: AsyncSession) -> asyncpg.Connection | None:
    """The asyncpg connection under the session's transaction, when the driver is asyncpg."""
    raw = await (await session.connection()).get_raw_connection()
    driver = raw.driver_connection
    return driver if isinstance(driver, asyncpg.Connection) else None


def stored_event(row: AuditEventRow) -> StoredEvent:
    return StoredEvent(*(getattr(row, column.name) for column in EVENT_COLUMNS))


@dataclass
class Sequencer:
    grace: dt.timedelta = dt.timedelta(seconds=60)
    batch: int = 5000
    _gaps: dict[int, float] = field(default_factory=dict)

    async def integrate(self, session: AsyncSession, *, full_sweep: bool = False) -> int:
        """Integrate waiting events into the tree; returns how many became leaves.

        The caller holds the sequencing lock, and ``session`` reads one snapshot taken
        after the lock was granted (REPEATABLE READ on PostgreSQL).
        """
        postgres = session.get_bind().dialect.name == "postgresql"
        state = await session.get(AuditSequencerState, 1)
        if state is None:
            state = AuditSequencerState(id=1, floor_event_id=0)
            session.add(state)
        floor = 0 if full_sweep else state.floor_event_id
        # Core rows, not ORM objects: the sequencer only hashes them. The leaves are
        # bounded by the floor too (implied by the join, but the planner cannot see it):
        # that makes the anti-join two index range scans above the floor, whatever the
        # log's size. Without it PostgreSQL hashed every leaf in the log on every pass,
        # 300 ms at a million events, growing with the log (docs/benchmarks.md).
        driver = await _asyncpg_connection(session) if postgres else None
        if driver is not None:
            rows: Sequence[Sequence[Any]] = await driver.fetch(_PG_WAITING, floor, self.batch)
        else:
            result = await session.execute(
                sa.select(*EVENT_COLUMNS)
                .where(
                    AuditEventRow.id > floor,
                    ~sa.exists().where(
                        AuditLeaf.event_id == AuditEventRow.id, AuditLeaf.event_id > floor
                    ),
                )
                .order_by(AuditEventRow.id)
                .limit(self.batch)
            )
            rows = result.all()  # tuples in StoredEvent's field order
        if rows:
            await self._append(session, rows, driver)
        if not full_sweep:
            last = rows[-1][0] if len(rows) == self.batch else None
            state.floor_event_id = await self._advance(
                session, state.floor_event_id, last, gaps_are_final=not postgres
            )
        await session.flush()
        return len(rows)

    async def _append(
        self,
        session: AsyncSession,
        rows: Sequence[Sequence[Any]],
        driver: asyncpg.Connection | None,
    ) -> None:
        size = first = await tree_size(session)
        known = await fetch_nodes(session, frontier_keys(size))
        levels: list[int] = []
        indexes: list[int] = []
        hashes: list[bytes] = []
        get = known.__getitem__
        for row in rows:
            leaf = merkle.leaf_hash(spliced_bytes(row))
            for level, index, value in merkle.completed_nodes(
                size, leaf, lambda lv, ix: get((lv, ix))
            ):
                known[(level, index)] = value
                levels.append(level)
                indexes.append(index)
                hashes.append(value)
            size += 1
        event_ids = [row[0] for row in rows]
        if driver is not None:
            # One statement a table, the rows as arrays: SQLAlchemy's executemany cost
            # more per row than hashing it (docs/benchmarks.md, issue 19).
            await driver.execute(_PG_LEAVES, first, event_ids)
            await driver.execute(_PG_NODES, levels, indexes, hashes)
            return
        # Core inserts on the tables: the ORM's bulk machinery costs more than the rows.
        await session.execute(
            sa.insert(table_of(AuditLeaf)),
            [{"leaf_index": first + n, "event_id": e} for n, e in enumerate(event_ids)],
        )
        await session.execute(
            sa.insert(table_of(AuditNode)),
            [
                {"level": lv, "idx": ix, "hash": h}
                for lv, ix, h in zip(levels, indexes, hashes, strict=True)
            ],
        )

    async def _advance(
        self, session: AsyncSession, floor: int, last: int | None, *, gaps_are_final: bool
    ) -> int:
        query = sa.select(AuditEventRow.id).where(AuditEventRow.id > floor)
        if last is not None:
            query = query.where(AuditEventRow.id <= last)
        ids = list(await session.scalars(query.order_by(AuditEventRow.id).limit(self.batch)))
        now = time.monotonic()
        expected = floor + 1
        for event_id in ids:
            if event_id != expected:
                first_seen = self._gaps.setdefault(expected, now)
                if not gaps_are_final and now - first_seen < self.grace.total_seconds():
                    break
                self._gaps.pop(expected, None)
            expected = event_id + 1
        return expected - 1
