"""This process's indexes of stored fingerprints: loaded at start-up, kept current.

Each server process holds its own indexes in memory (ledger/evidence/index.py). They
only propose candidates by distance; which stored photos may still match is decided by
the database at each check (ledger/evidence/service.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg
import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledger.evidence.index import I64, U8, FingerprintIndex
from ledger.evidence.models import EvidencePhoto, ListingPhoto

# A row's id is taken when it is inserted and seen when its transaction commits, so
# ids can become visible out of order: an id missing below the highest one read is a
# gap, asked for again at each read until it appears or has been missing this long (a
# rolled-back insert leaves a gap for ever; a filing's transaction lasts milliseconds).
GAP_PATIENCE_SECONDS = 600.0
MAX_GAPS = 10_000  # the newest; beyond these, an id is given up for lost
LOAD_GAP_WINDOW = 100_000  # at the first load, ids this far below the highest are checked
LOAD_PAGE = 100_000
WARM_RETRY_SECONDS = 5.0

log = logging.getLogger("ledger.evidence")


@dataclass
class _Table:
    """What one index has read of its table: every id up to ``high``, less the gaps."""

    model: type[EvidencePhoto] | type[ListingPhoto]
    index: FingerprintIndex = field(default_factory=FingerprintIndex)
    high: int = 0
    gaps: dict[int, float] = field(default_factory=dict)  # id → when first missed

    def take(self, ids: I64, fingerprints: U8, *, noticed: float, window: int | None) -> None:
        """Add rows just read, and note the ids that should have come with them."""
        if len(ids):
            self.index.add(ids, fingerprints)
            for row_id in ids[ids <= self.high].tolist():
                self.gaps.pop(row_id, None)
            top = int(ids.max())
            if top > self.high:
                low = self.high + 1 if window is None else max(self.high + 1, top - window)
                missing = np.setdiff1d(np.arange(low, top + 1, dtype=np.int64), ids)
                for row_id in missing[-MAX_GAPS:].tolist():
                    self.gaps[row_id] = noticed
                self.high = top
        for row_id in [i for i, at in self.gaps.items() if noticed - at > GAP_PATIENCE_SECONDS]:
            del self.gaps[row_id]
        if len(self.gaps) > MAX_GAPS:
            for row_id in sorted(self.gaps)[: len(self.gaps) - MAX_GAPS]:
                del self.gaps[row_id]


class Indexes:
    """This process's indexes of report photos and listing photos, kept current.

    The first read takes every row (on PostgreSQL by a binary COPY, the fastest way
    out of the database); later reads take the ids above the highest read, and the
    gaps below it. Sorting new rows into the index (``FingerprintIndex.compaction``)
    runs in a worker thread in the background, so no check waits for it.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], dsn: str | None) -> None:
        self._sessionmaker = sessionmaker
        self._dsn = dsn
        self._tables = {"reports": _Table(EvidencePhoto), "listings": _Table(ListingPhoto)}
        self._lock = asyncio.Lock()
        self._upkeep: asyncio.Task[None] | None = None
        self._warm: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.loaded = False

    @property
    def reports(self) -> FingerprintIndex:
        return self._tables["reports"].index

    @property
    def listings(self) -> FingerprintIndex:
        return self._tables["listings"].index

    def start(self) -> None:
        """Load the indexes in the background, retrying until the database answers."""
        if self._warm is None:
            self._warm = asyncio.create_task(self._warm_up(), name="evidence-index")

    async def close(self) -> None:
        """Stop: a load under way is let finish (cancelling it mid-query would leave
        the driver's connection to a loop that is closing); upkeep, which touches only
        memory, is cancelled."""
        self._stopping.set()
        if self._warm is not None:
            await self._warm
        if self._upkeep is not None:
            self._upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._upkeep
        self._warm = self._upkeep = None

    async def _warm_up(self) -> None:
        while not self.loaded and not self._stopping.is_set():
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001  (retried; a check would retry too)
                log.warning("evidence index not loaded", extra={"error": type(exc).__name__})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), WARM_RETRY_SECONDS)

    async def refresh(self) -> None:
        """Read what was committed since the last read."""
        async with self._lock:
            if not self.loaded:
                for table in self._tables.values():
                    await self._load(table)
                self.loaded = True
            else:
                async with self._sessionmaker() as session:
                    for table in self._tables.values():
                        await self._read_new(session, table)
        idle = self._upkeep is None or self._upkeep.done()
        if idle and any(t.index.compaction() for t in self._tables.values()):
            self._upkeep = asyncio.create_task(self._keep_up(), name="evidence-upkeep")

    async def _read_new(self, session: AsyncSession, table: _Table) -> None:
        """Ids above the highest read, and the gaps, a page at a time (a bulk import
        between two checks is read in bounded steps)."""
        model = table.model
        gaps = sorted(table.gaps)
        while True:
            wanted = model.id > table.high
            if gaps:
                wanted = sa.or_(wanted, model.id.in_(gaps))
            query = sa.select(model.id, model.fingerprint).where(wanted).order_by(model.id)
            rows = (await session.execute(query.limit(LOAD_PAGE))).all()
            ids = np.fromiter((row_id for row_id, _ in rows), dtype=np.int64, count=len(rows))
            table.take(ids, _packed(fp for _, fp in rows), noticed=time.monotonic(), window=None)
            if len(rows) < LOAD_PAGE:
                return
            gaps = []  # asked for once; the next page starts above the new highest

    async def _load(self, table: _Table) -> None:
        if self._dsn is not None:
            ids, fps = await _copy_out(self._dsn, table.model.__tablename__)
        else:
            ids, fps = await self._read_pages(table)
        table.take(ids, fps, noticed=time.monotonic(), window=LOAD_GAP_WINDOW)
        plan = table.index.compaction(everything=True)
        if plan is not None:  # sorted off the event loop: 10M rows take seconds
            table.index.apply(plan, await asyncio.to_thread(plan.build))

    async def _read_pages(self, table: _Table) -> tuple[I64, U8]:
        model = table.model
        ids: list[int] = []
        fps: list[bytes] = []
        async with self._sessionmaker() as session:
            while True:
                query = sa.select(model.id, model.fingerprint).order_by(model.id)
                if ids:
                    query = query.where(model.id > ids[-1])
                page = (await session.execute(query.limit(LOAD_PAGE))).all()
                ids += [row_id for row_id, _ in page]
                fps += [fp for _, fp in page]
                if len(page) < LOAD_PAGE:
                    break
        return np.asarray(ids, dtype=np.int64), _packed(fps)

    async def _keep_up(self) -> None:
        for table in self._tables.values():
            while (plan := table.index.compaction()) is not None:
                built = await asyncio.to_thread(plan.build)
                table.index.apply(plan, built)


def _packed(fingerprints: Iterable[bytes]) -> U8:
    return np.frombuffer(b"".join(fingerprints), dtype=np.uint8).reshape(-1, 32)


# PostgreSQL's binary COPY: a 19-byte header, then per row a field count, and each
# field's length and bytes (big-endian), then -1. Every row here is the same 50 bytes.
_COPY_HEADER = 19
_COPY_ROW = np.dtype(
    [("fields", ">i2"), ("id_len", ">i4"), ("id", ">i8"), ("fp_len", ">i4"), ("fp", "u1", 32)]
)


class _CopyRows:
    """(id, fingerprint) rows parsed from a binary COPY as its bytes arrive."""

    def __init__(self, table: str) -> None:
        self._table = table
        self._pending = bytearray()
        self._header = True
        self._ids: list[I64] = []
        self._fps: list[U8] = []

    async def receive(self, chunk: bytes) -> None:
        self._pending.extend(chunk)
        if len(self._pending) >= 1 << 22:
            self._parse(trailer=0)

    def rows(self) -> tuple[I64, U8]:
        self._parse(trailer=2)
        if bytes(self._pending) != b"\xff\xff":
            raise ValueError(f"{self._table}: the COPY did not end as it should")
        if not self._ids:
            return np.empty(0, dtype=np.int64), np.empty((0, 32), dtype=np.uint8)
        return np.concatenate(self._ids), np.concatenate(self._fps).reshape(-1, 32)

    def _parse(self, *, trailer: int) -> None:
        start = _COPY_HEADER if self._header else 0
        if len(self._pending) < start:
            return
        self._header = False
        whole = (len(self._pending) - start - trailer) // _COPY_ROW.itemsize
        rows = np.frombuffer(self._pending, dtype=_COPY_ROW, count=whole, offset=start)
        if not (
            (rows["fields"] == 2).all() and (rows["id_len"] == 8).all()
            and (rows["fp_len"] == 32).all()
        ):  # fmt: skip
            raise ValueError(f"{self._table}: a fingerprint that is not 32 bytes")
        self._ids.append(rows["id"].astype(np.int64))
        self._fps.append(rows["fp"].copy())
        del rows
        self._pending = self._pending[start + whole * _COPY_ROW.itemsize :]


async def _copy_out(dsn: str, table: str) -> tuple[I64, U8]:
    """Every (id, fingerprint) of ``table``, by one binary COPY."""
    parsed = _CopyRows(table)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_from_query(
            f"SELECT id, fingerprint FROM {table}",  # noqa: S608  (a table name of ours)
            output=parsed.receive,
            format="binary",
        )
    finally:
        await conn.close()
    return parsed.rows()
