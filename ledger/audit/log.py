"""Recording audit events: the one API the rest of the core uses.

- ``record(session, event, now=...)`` adds the event to the caller's transaction: a
  state change and its audit entry commit together, or not at all.
- ``AuditWriter.write(event)`` is for reads of subject data: it returns only once the
  event is durably committed, so the read can then be answered. Events from concurrent
  requests are gathered into one transaction (group commit): the writer flushes the
  next batch as soon as the previous one is committed, so a lone request waits for one
  commit and a busy server commits many events per fsync. If the commit fails, every
  waiting request gets ``Unavailable`` and must not answer.

The writer commits through a sink: on PostgreSQL, one INSERT of the whole batch as
arrays on its own asyncpg connection (one round trip, no SQL rendered per batch);
elsewhere, a Core insert through a SQLAlchemy session. Both return the ids in the
order of the events given; the tests run the writer on both databases.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ledger.audit.events import AuditEvent
from ledger.audit.models import AuditEventRow
from ledger.clock import Clock
from ledger.db import create_sessionmaker, postgres_dsn, table_of
from ledger.errors import Unavailable

log = logging.getLogger("ledger.audit")

# A Core insert on the table (not the ORM entity): no ORM bulk-persistence machinery
# runs per batch, and the ids come back in the order of the rows given.
_TABLE = table_of(AuditEventRow)
_INSERT = sa.insert(_TABLE).returning(_TABLE.c.id, sort_by_parameter_order=True)


def _values(event: AuditEvent, now: Any) -> dict[str, Any]:
    return {
        "recorded_at": now,
        "tag": event.tag.value,
        "actor_type": event.actor.type.value,
        "actor_member_id": event.actor.member_id,
        "actor_client_id": event.actor.client_id,
        "actor_user_id": event.actor.user_id,
        "subject": event.subject,
        "purpose": event.purpose,
        "reference": event.reference,
        "request_id": event.request_id,
        "outcome": event.outcome.value,
        "body": event.body_json(),
    }


async def record(session: AsyncSession, event: AuditEvent, *, now: dt.datetime) -> int:
    """Add ``event`` to the caller's transaction; returns its id."""
    event_id = await session.scalar(_INSERT, _values(event, now))
    assert event_id is not None
    return int(event_id)


async def record_many(
    session: AsyncSession, events: list[AuditEvent], *, now: dt.datetime
) -> list[int]:
    """Add ``events`` to the caller's transaction in one statement; their ids, in order."""
    if not events:
        return []
    result = await session.execute(_INSERT, [_values(e, now) for e in events])
    return [int(row[0]) for row in result]


class EventSink(Protocol):
    async def insert(self, rows: list[dict[str, Any]]) -> list[int]:
        """Commit ``rows`` (from ``_values``) in one transaction; their ids, in order."""
        ...

    async def close(self) -> None: ...


class SessionSink:
    """Any database: a Core insert in a session's transaction."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def insert(self, rows: list[dict[str, Any]]) -> list[int]:
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(_INSERT, rows)
            return [int(row[0]) for row in result]

    async def close(self) -> None:
        return None


# The batch as one array per column, read in array order (ORDER BY the ordinality), so
# the ids the sequence hands out rise in that order: sorted, they match the batch.
PG_COLUMNS = (
    "recorded_at",
    "tag",
    "actor_type",
    "actor_member_id",
    "actor_client_id",
    "actor_user_id",
    "subject",
    "purpose",
    "reference",
    "request_id",
    "outcome",
    "body",
)
_PG_INSERT = """
INSERT INTO audit_events (recorded_at, tag, actor_type, actor_member_id, actor_client_id,
                          actor_user_id, subject, purpose, reference, request_id, outcome, body)
SELECT recorded_at, tag, actor_type, actor_member_id, actor_client_id,
       actor_user_id, subject, purpose, reference, request_id, outcome, body
FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::uuid[],
            $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
     WITH ORDINALITY AS t(recorded_at, tag, actor_type, actor_member_id, actor_client_id,
                          actor_user_id, subject, purpose, reference, request_id, outcome,
                          body, n)
ORDER BY n
RETURNING id
"""


class PostgresSink:
    """PostgreSQL: the batch as arrays in one statement, on the writer's own connection
    (one batch is in flight at a time). A failed connection is replaced on the next
    batch."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None

    async def insert(self, rows: list[dict[str, Any]]) -> list[int]:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                self._dsn, server_settings={"application_name": "ledger-audit-writer"}
            )
        columns = [[row[name] for row in rows] for name in PG_COLUMNS]
        try:
            records = await self._conn.fetch(_PG_INSERT, *columns)
        except Exception:
            await self.close()  # a fresh connection for the next batch
            raise
        return sorted(int(record[0]) for record in records)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=5)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn.terminate()


def sink_for(engine: AsyncEngine) -> EventSink:
    """The fastest sink the engine's database allows."""
    dsn = postgres_dsn(engine.url.render_as_string(hide_password=False))
    return PostgresSink(dsn) if dsn else SessionSink(create_sessionmaker(engine))


@dataclass
class _Pending:
    values: dict[str, Any]
    done: asyncio.Future[int]


class AuditWriter:
    """Group commit of audit events for reads. One per process; start it, then write."""

    def __init__(self, sink: EventSink, *, clock: Clock, max_batch: int = 512) -> None:
        self._sink = sink
        self._clock = clock
        self._max_batch = max_batch
        self._queue: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.events = 0
        # Told of each batch: its size and whether it committed (ledger/metrics.py).
        self.on_batch: Callable[[int, bool], None] | None = None

    @property
    def queue_length(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def stop(self) -> None:
        """Flush what is queued, then stop (never in the middle of a commit)."""
        if self._task is None:
            return
        task, self._task = self._task, None
        self._stopping = True
        self._wakeup.set()
        await task
        await self._sink.close()

    async def write(self, event: AuditEvent) -> int:
        """Record ``event`` durably and return its id; raises ``Unavailable`` on failure."""
        if self._task is None:
            raise Unavailable("the audit writer is not running")
        pending = _Pending(
            _values(event, self._clock.now()), asyncio.get_running_loop().create_future()
        )
        self._queue.append(pending)
        self._wakeup.set()
        return await asyncio.shield(pending.done)

    def _take(self) -> list[_Pending]:
        batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
        if not self._queue:
            self._wakeup.clear()
        return batch

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            if self._stopping and not self._queue:
                return
            # One turn of the loop first: the requests already ready to run queue their
            # events too, and share this commit instead of waiting for the next one.
            await asyncio.sleep(0)
            await self._flush(self._take())

    async def _flush(self, batch: list[_Pending]) -> None:
        if not batch:
            return
        try:
            ids = await self._sink.insert([p.values for p in batch])
        except Exception as exc:  # noqa: BLE001  (every waiter must hear of it)
            log.error(  # noqa: TRY400  (the type is logged; a traceback may carry data)
                "audit batch failed", extra={"events": len(batch), "error": type(exc).__name__}
            )
            if self.on_batch is not None:
                self.on_batch(len(batch), False)  # noqa: FBT003
            failure = Unavailable("the audit log could not record this request; it was not served")
            for p in batch:
                if not p.done.done():
                    p.done.set_exception(failure)
            return
        self.batches += 1
        self.events += len(batch)
        if self.on_batch is not None:
            self.on_batch(len(batch), True)  # noqa: FBT003
        for p, event_id in zip(batch, ids, strict=True):
            if not p.done.done():
                p.done.set_result(event_id)
