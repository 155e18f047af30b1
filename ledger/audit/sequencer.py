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
from dataclasses import dataclass, field

import sqlalchemy as sa
from refund_ledger_client import merkle
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit.events import StoredEvent
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
        rows = [StoredEvent(*row) for row in result]
        if rows:
            await self._append(session, rows)
        if not full_sweep:
            last = rows[-1].id if len(rows) == self.batch else None
            state.floor_event_id = await self._advance(
                session, state.floor_event_id, last, gaps_are_final=not postgres
            )
        await session.flush()
        return len(rows)

    async def _append(self, session: AsyncSession, rows: list[StoredEvent]) -> None:
        size = await tree_size(session)
        known = await fetch_nodes(session, frontier_keys(size))
        leaves, nodes = [], []
        for row in rows:
            leaf = merkle.leaf_hash(row.canonical_bytes())
            for level, index, value in merkle.completed_nodes(
                size, leaf, lambda lv, ix: known[(lv, ix)]
            ):
                known[(level, index)] = value
                nodes.append({"level": level, "idx": index, "hash": value})
            leaves.append({"leaf_index": size, "event_id": row.id})
            size += 1
        # Core inserts on the tables: the ORM's bulk machinery costs more than the rows.
        await session.execute(sa.insert(table_of(AuditLeaf)), leaves)
        await session.execute(sa.insert(table_of(AuditNode)), nodes)

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
