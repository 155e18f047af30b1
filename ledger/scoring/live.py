"""Which subjects have anything that may count, now or later: a clean buyer needs no read.

Most buyers have never been reported. Their risk query used to cost one indexed read
that found nothing. ``LiveSubjects`` holds, in each server process, the subjects that
have a report that may count now or later (stored state ``active``: counting, disputed,
pending notice or suspended) or a protective marker not removed, each with the latest
moment any of these ends (``expires_at``). A subject not in it, or whose moment has
passed, has nothing that can count: it is answered as a subject never reported, by the
very same code, with no read. So a subject whose reports were all withdrawn, suppressed
or expired takes the same path, and the same time, as one never reported; only subjects
that may count are read and scored.

How it stays current (PostgreSQL only; on SQLite it is off and every query reads):

- **Loading.** Once its ``LISTEN ledger_subjects`` connection is up, the process reads
  every live subject's key and moment with one binary ``COPY`` (about 26 bytes a
  subject), parsed as it arrives (``CopyParser``), into two sorted arrays: 16 bytes a
  subject in memory, a binary search per query. Until then, and whenever the connection
  is lost, the set is off and every query reads.
- **Changes.** Triggers on ``reports`` and ``protective_markers`` (migration 0019)
  notify the subjects a statement touched, in the changing transaction; PostgreSQL
  delivers the notification when it commits. On it the subject is at once taken as
  live (its queries read and score), then its moment is read again. A statement that
  touches more than 100 subjects (a bulk load) notifies ``*``, and the whole set is
  read again. Many changes since the last load (``rebuild_after``) do the same.
- **Time.** Nothing needs to be written when a report expires: each subject's moment is
  compared with the query's ``now``. Suppression and purging are written by maintenance
  and notified like any change; until they are, the subject is read and scored, and the
  score already leaves those reports out.

Keys are the first 64 bits of the subject's MD5 (computed alike in SQL and here; a
pseudonym is already a keyed PRF output, so this is not a security hash). Two live
subjects sharing a key in one load are both kept; a key is only ever cleared after a
read of the subject that notified. A subject that shares a key with a live one is read
and scored: a collision can cost a read, never a wrong answer, except in the case of a
live subject cleared by a colliding one between loads (at 10 million live subjects,
about one chance in 10^12 per change, and undone at the next load).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import logging
import math
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.listen import LOST, Listener
from ledger.markers.models import ProtectiveMarker
from ledger.reports.models import Report
from ledger.reports.policy import State

log = logging.getLogger("ledger.scoring")

CHANNEL = "ledger_subjects"
APPLICATION_NAME = "ledger-live-listener"
LOAD_TIMEOUT_SECONDS = 600.0
EVERYTHING = "*"  # the payload of a bulk change: read the whole set again


def key_of(subject: str) -> int:
    """The first 64 bits of the subject's MD5, signed: what ``SNAPSHOT`` computes."""
    digest = hashlib.md5(subject.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# What may count, now or later, and until when (whole seconds, rounded up: a moment
# rounded up only sends a query to the full path for up to a second longer).
SNAPSHOT = """
SELECT ('x' || left(md5(subject), 16))::bit(64)::bigint,
       ceil(extract(epoch FROM max(until)))::bigint
FROM (SELECT subject, expires_at AS until FROM reports WHERE state = 'active'
      UNION ALL
      SELECT subject, expires_at FROM protective_markers WHERE removed_at IS NULL) live
GROUP BY subject
"""
_SUBJECTS = """
SELECT subject, ceil(extract(epoch FROM max(until)))::bigint
FROM (SELECT subject, expires_at AS until FROM reports
      WHERE state = 'active' AND subject = ANY($1::varchar[])
      UNION ALL
      SELECT subject, expires_at FROM protective_markers
      WHERE removed_at IS NULL AND subject = ANY($1::varchar[])) live
GROUP BY subject
"""

# A binary COPY of (bigint, bigint) rows: a 19-byte header, then per row a field count
# (int16), and per field its length (int32) and value, big-endian; an int16 -1 at the end.
_ROW = np.dtype([("n", ">i2"), ("l1", ">i4"), ("key", ">i8"), ("l2", ">i4"), ("until", ">i8")])
_HEADER = 19


_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_BLOCK_ROWS = 1 << 22  # 32 MiB an array: glibc maps blocks this large, and unmaps them


class CopyParser:
    """Keys and moments from the binary COPY of ``SNAPSHOT``, fed as it arrives.

    At ten million subjects the COPY is 260 MB. Held whole, and then copied, it made the
    load peak 551 MiB above the process's start; parsed chunk by chunk into blocks of
    fixed size, 307 MiB (bench/live_load.py, docs/benchmarks.md). Nothing but the parsed
    integers is ever held, and the blocks are large enough to be mapped and given back
    to the system when freed.
    """

    def __init__(self) -> None:
        self._rest = b""
        self._header_seen = False
        self._blocks: list[tuple[np.ndarray, np.ndarray]] = []
        self._filled = _BLOCK_ROWS  # rows in the last block (none yet: it is "full")

    def feed(self, chunk: bytes) -> None:
        data = self._rest + chunk if self._rest else chunk
        if not self._header_seen:
            if len(data) < _HEADER:
                self._rest = data
                return
            if data[: len(_SIGNATURE)] != _SIGNATURE:
                raise ValueError("not a binary COPY")
            data = data[_HEADER:]
            self._header_seen = True
        count = len(data) // _ROW.itemsize
        if count:
            rows = np.frombuffer(data, dtype=_ROW, count=count)
            if (rows["n"] != 2).any() or (rows["l1"] != 8).any() or (rows["l2"] != 8).any():
                raise ValueError("a COPY row that is not two 8-byte integers")
            self._append(rows)
        self._rest = data[count * _ROW.itemsize :]

    def _append(self, rows: np.ndarray) -> None:
        start = 0
        while start < len(rows):
            if self._filled == _BLOCK_ROWS:
                self._blocks.append(
                    (np.empty(_BLOCK_ROWS, np.int64), np.empty(_BLOCK_ROWS, np.int64))
                )
                self._filled = 0
            keys, until = self._blocks[-1]
            take = min(len(rows) - start, _BLOCK_ROWS - self._filled)
            part = rows[start : start + take]
            keys[self._filled : self._filled + take] = part["key"]
            until[self._filled : self._filled + take] = part["until"]
            self._filled += take
            start += take

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Keys and moments of every row; ValueError if the COPY did not end as one."""
        if not self._header_seen or self._rest != b"\xff\xff":
            raise ValueError("the COPY ended early")
        if not self._blocks:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        blocks, self._blocks = self._blocks, []
        last_keys, last_until = blocks[-1]
        blocks[-1] = (last_keys[: self._filled], last_until[: self._filled])
        del last_keys, last_until
        if len(blocks) == 1:
            return blocks[0]
        # One column at a time, each column's blocks freed once it is whole.
        key_blocks, until_blocks = [k for k, _ in blocks], [u for _, u in blocks]
        del blocks
        keys = np.concatenate(key_blocks)
        del key_blocks
        return keys, np.concatenate(until_blocks)

    def sorted(self) -> tuple[memoryview, memoryview]:
        """``sorted_set`` of every row, each unsorted column freed as soon as it is sorted."""
        return _sorted(list(self.result()))


def parse_copy(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Keys and moments from the whole binary COPY of ``SNAPSHOT``."""
    parser = CopyParser()
    parser.feed(data)
    return parser.result()


def sorted_set(keys: np.ndarray, until: np.ndarray) -> tuple[memoryview, memoryview]:
    """The two arrays a lookup searches: keys ascending, each with the latest moment of
    the subjects sharing it (two subjects sharing a key are both live). They are numpy's,
    seen through memoryviews: indexing one gives a Python int, as ``bisect`` needs."""
    return _sorted([keys, until])


def _sorted(columns: list[np.ndarray]) -> tuple[memoryview, memoryview]:
    keys, until = columns
    columns.clear()  # the caller's only hold on them: each is freed once sorted
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    until = until[order]
    del order
    if len(keys):
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        if len(starts) < len(keys):
            keys, until = keys[starts], np.maximum.reduceat(until, starts)
    return np.ascontiguousarray(keys).data, np.ascontiguousarray(until).data


async def read_portable(session: AsyncSession) -> tuple[memoryview, memoryview]:
    """The same set read through SQLAlchemy, on any database: what ``SNAPSHOT`` reads,
    for SQLite (which has no COPY and no notifications) and for the tests."""
    live: sa.CompoundSelect[Any] = sa.union_all(
        sa.select(Report.subject, Report.expires_at).where(Report.state == State.ACTIVE),
        sa.select(ProtectiveMarker.subject, ProtectiveMarker.expires_at).where(
            ProtectiveMarker.removed_at.is_(None)
        ),
    )
    latest: dict[str, float] = {}
    for row in await session.execute(live):
        subject, until = row[0], row[1].timestamp()
        latest[subject] = max(latest.get(subject, 0.0), until)
    keys = np.array([key_of(s) for s in latest], dtype=np.int64)
    moments = np.array([math.ceil(u) for u in latest.values()], dtype=np.int64)
    return sorted_set(keys, moments)


@dataclass
class LiveStats:
    loaded: int = 0  # subjects (keys) in the last load
    changed: int = 0  # keys changed since
    loads: int = 0


class LiveSubjects:
    """The set, as one process holds it. ``may_count`` is all a query asks of it."""

    def __init__(self, *, rebuild_after: int = 100_000, held_capacity: int = 0) -> None:
        self.enabled = False
        self.rebuild_after = rebuild_after
        # What was read of subjects that may count (ledger/scoring/service.py
        # ``HeldReports``), each with the change counter taken before its read: held
        # until the subject changes, for at most ``held_capacity`` subjects (least
        # recently asked about leave first).
        self.held_capacity = held_capacity
        self._held: dict[str, tuple[int, object]] = {}
        self._held_from = 0  # reads whose ticket is older than this are never held
        self.answered_from_held = 0  # counted by the risk query, read by the metrics
        self._keys: Sequence[int] = array("q")
        self._until: Sequence[int] = array("q")
        # Changes since the load: key -> moment (math.inf: taken as live until read again).
        self._changed: dict[int, float] = {}
        self._stamp: dict[int, int] = {}  # key -> the change counter when it last changed
        self._counter = 0
        self.stats = LiveStats()
        self.answered_without_read = 0  # counted by the risk query, read by the metrics

    def may_count(self, subject: str, now: float) -> bool:
        """False if nothing of ``subject`` can count at ``now`` (a Unix time): answer it as
        a subject never reported. True means: read and score. Always True while off."""
        if not self.enabled:
            return True
        key = key_of(subject)
        until = self._changed.get(key)
        if until is None:
            keys = self._keys
            i = bisect.bisect_left(keys, key)
            if i == len(keys) or keys[i] != key:
                return False
            until = self._until[i]
        return until > now

    def touch(self, subjects: Iterable[str]) -> None:
        """Take ``subjects`` as live until their moment is read again (and hold nothing
        read of them before)."""
        for subject in subjects:
            self._set(key_of(subject), math.inf)
            self._held.pop(subject, None)

    def held(self, subject: str) -> object | None:
        """What was read of ``subject`` and is still what the database holds, if any: no
        change to it was noted since before that read began."""
        entry = self._held.pop(subject, None)
        if entry is None:
            return None
        since, rows = entry
        if self._stamp.get(key_of(subject), 0) > since:
            return None  # changed since (a sharer of its key did, at least): read again
        self._held[subject] = entry  # the most recently asked about leave last
        return rows

    def ticket(self, subject: str) -> int | None:
        """Taken before reading ``subject``, to hold what the read returns; None if it may
        not be held: the set is off, or a change to the subject was noted that has not
        been read since its notification (it may not have committed yet)."""
        if not self.enabled or not self.held_capacity:
            return None
        if self._changed.get(key_of(subject)) == math.inf:
            return None
        return self._counter

    def hold(self, subject: str, ticket: int | None, rows: object) -> None:
        """Keep ``rows``, read of ``subject`` after ``ticket`` was taken, unless the
        subject changed (or everything was forgotten) since."""
        if ticket is None or ticket < self._held_from or not self.enabled:
            return
        if self._stamp.get(key_of(subject), 0) > ticket:
            return
        held = self._held
        held.pop(subject, None)
        while len(held) >= self.held_capacity:
            del held[next(iter(held))]
        held[subject] = (ticket, rows)

    def forget_held(self) -> None:
        """Hold nothing read so far, nor what reads in flight return (a bulk change named
        no subjects, a load, the set turned off)."""
        self._counter += 1
        self._held_from = self._counter
        self._held.clear()

    @property
    def held_count(self) -> int:
        return len(self._held)

    def settle(self, subjects: Iterable[str], moments: dict[str, int], since: int) -> None:
        """The moments read for ``subjects`` (absent: nothing live), kept for a subject
        unless it changed again after ``since`` (then it stays live until read again)."""
        for subject in subjects:
            key = key_of(subject)
            if self._stamp.get(key, 0) <= since:
                self._set(key, moments.get(subject, 0))

    def _set(self, key: int, until: float) -> None:
        self._counter += 1
        self._changed[key] = until
        self._stamp[key] = self._counter
        self.stats.changed = len(self._changed)

    @property
    def counter(self) -> int:
        return self._counter

    def load(self, keys: Sequence[int], until: Sequence[int], since: int) -> None:
        """A new load, read after the change counter was ``since``: changes noted after
        that stay on top of it."""
        self.forget_held()
        self._keys, self._until = keys, until
        self._changed = {k: v for k, v in self._changed.items() if self._stamp[k] > since}
        self._stamp = {k: self._stamp[k] for k in self._changed}
        self.stats = LiveStats(
            loaded=len(keys), changed=len(self._changed), loads=self.stats.loads + 1
        )

    def disable(self) -> None:
        self.enabled = False
        self.forget_held()


class LiveListener(Listener):
    """Loads the set once listening, and keeps it in step with the notifications.

    Reads go through ``connection()`` (the hot read's pool), never through the listening
    connection, whose probe must not wait behind a load.
    """

    def __init__(
        self,
        dsn: str,
        live: LiveSubjects,
        connection: Callable[[], contextlib.AbstractAsyncContextManager[asyncpg.Connection]],
        **timing: float,
    ) -> None:
        super().__init__(
            dsn,
            channel=CHANNEL,
            application_name=APPLICATION_NAME,
            on_notify=self._notified_subjects,
            on_listening=self._listening_started,
            on_lost=self._lost,
            **timing,
        )
        self.live = live
        self._connection = connection
        self._pending: set[str] = set()
        self._reload = False
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self.settled = asyncio.Event()  # set when nothing is left to read (for tests)

    def _notified_subjects(self, payload: str) -> None:
        if payload == EVERYTHING:
            self._reload = True
            self.live.forget_held()  # the change named no one: anyone may have changed
        else:
            subjects = payload.split(",")
            self.live.touch(subjects)
            self._pending.update(subjects)
        self.settled.clear()
        self._wake.set()

    async def _listening_started(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        await self._load()
        self.live.enabled = True
        self._worker = asyncio.create_task(self._work(), name="live-subjects")

    def _lost(self) -> None:
        self.live.disable()
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()

    async def _load(self) -> None:
        since = self.live.counter
        parser = CopyParser()

        async def write(chunk: bytes) -> None:
            parser.feed(chunk)

        async with self._connection() as conn:
            await conn.copy_from_query(
                SNAPSHOT, output=write, format="binary", timeout=LOAD_TIMEOUT_SECONDS
            )
        # Sorting ten million keys takes a second: off the event loop (numpy lets go of
        # the GIL while it sorts).
        keys, until = await asyncio.to_thread(parser.sorted)
        self.live.load(keys, until, since)

    async def _work(self) -> None:
        try:
            while True:
                if not self._pending and not self._reload:
                    self.settled.set()
                    await self._wake.wait()
                self._wake.clear()
                if self._reload or self.live.stats.changed > self.live.rebuild_after:
                    self._reload = False
                    await self._load()
                    continue
                subjects, self._pending = list(self._pending), set()
                since = self.live.counter
                async with self._connection() as conn:
                    rows = await conn.fetch(_SUBJECTS, subjects)
                self.live.settle(subjects, {r[0]: r[1] for r in rows}, since)
        except asyncio.CancelledError:
            raise
        except (*LOST, ValueError) as exc:
            # Off, and the listening connection closed: the listener starts again and
            # loads afresh. Meanwhile every query reads.
            log.warning("live subjects could not be read", extra={"error": type(exc).__name__})
            self.live.disable()
            if self._conn is not None:
                self._conn.terminate()
