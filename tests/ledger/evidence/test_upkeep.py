"""Each process's fingerprint index is loaded and kept current from the database: rows
committed out of id order are not missed, the first load by COPY reads what paging
reads, ids are never given twice, and rows sorted in the background leave every answer
as a scan gives it."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.db import postgres_dsn
from ledger.evidence import index as index_module
from ledger.evidence.index import Hit, distances
from ledger.evidence.models import ListingPhoto
from ledger.evidence.upkeep import Indexes
from ledger.runtime import Runtime
from tests.factories import make_member


async def _listed(session: AsyncSession, member_id: uuid.UUID, fps: np.ndarray) -> list[int]:
    """Listing photos with these stored fingerprints, flushed (ids taken), not committed."""
    now = dt.datetime.now(dt.UTC)
    rows = [
        ListingPhoto(
            member_id=member_id,
            reference=f"sku-{uuid.uuid4().hex[:8]}",
            fingerprint=bytes(fp),
            quality=100,
            registered_at=now,
        )
        for fp in fps
    ]
    session.add_all(rows)
    await session.flush()
    return [row.id for row in rows]


async def _member(runtime: Runtime) -> uuid.UUID:
    async with runtime.sessionmaker() as session:
        return (await make_member(session, clock=runtime.clock)).id


def _brute(ids: list[int], fps: np.ndarray, query: np.ndarray, t: int) -> list[Hit]:
    d = distances(np.ascontiguousarray(fps).view(np.uint64).reshape(-1, 4), query)
    return sorted(
        (Hit(i, int(x)) for i, x in zip(ids, d, strict=True) if x <= t),
        key=lambda h: (h.distance, h.id),
    )


async def test_a_row_committed_after_a_later_id_is_read_once_it_commits(
    runtime: Runtime, backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time: its ids become visible in order")
    member = await _member(runtime)
    rng = np.random.default_rng(1)
    fps = rng.integers(0, 256, size=(2, 32), dtype=np.uint8)
    indexes = runtime.evidence.indexes
    await indexes.refresh()
    async with runtime.sessionmaker() as slow, runtime.sessionmaker() as quick:
        (early,) = await _listed(slow, member, fps[:1])  # takes its id, commits later
        (later,) = await _listed(quick, member, fps[1:])
        await quick.commit()
        assert later > early
        await indexes.refresh()
        assert [h.id for h in indexes.listings.search(fps[1].tobytes(), 0)] == [later]
        assert indexes.listings.search(fps[0].tobytes(), 0) == []
        await slow.commit()
    await indexes.refresh()
    assert [h.id for h in indexes.listings.search(fps[0].tobytes(), 0)] == [early]
    assert len(indexes.listings) == 2


async def test_the_first_load_by_copy_reads_what_paging_reads(
    runtime: Runtime, backend: str
) -> None:
    dsn = postgres_dsn(runtime.settings.resolved_database_url)
    if dsn is None:
        pytest.skip("the COPY load is PostgreSQL's")
    member = await _member(runtime)
    rng = np.random.default_rng(2)
    fps = rng.integers(0, 256, size=(300, 32), dtype=np.uint8)
    async with runtime.sessionmaker() as session:
        ids = await _listed(session, member, fps)
        await session.commit()
    by_copy = Indexes(runtime.read_sessionmaker, dsn)
    by_pages = Indexes(runtime.read_sessionmaker, None)
    await by_copy.refresh()
    await by_pages.refresh()
    assert len(by_copy.listings) == len(by_pages.listings) == 300
    for query in fps[::37]:
        expected = _brute(ids, fps, query, 31)
        assert by_copy.listings.search(query.tobytes(), 31) == expected
        assert by_pages.listings.search(query.tobytes(), 31) == expected


async def test_an_id_is_never_given_twice(runtime: Runtime) -> None:
    """SQLite reuses the highest rowid once its row is deleted, unless AUTOINCREMENT."""
    member = await _member(runtime)
    fps = np.zeros((2, 32), dtype=np.uint8)
    async with runtime.sessionmaker() as session:
        _, highest = await _listed(session, member, fps)
        await session.commit()
        await session.execute(sa.delete(ListingPhoto).where(ListingPhoto.id == highest))
        await session.commit()
        (again,) = await _listed(session, member, fps[:1])
        await session.commit()
    assert again > highest


async def test_rows_sorted_in_the_background_leave_every_answer_exact(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "TAIL_LIMIT", 40)
    member = await _member(runtime)
    rng = np.random.default_rng(3)
    fps = rng.integers(0, 256, size=(500, 32), dtype=np.uint8)
    indexes = runtime.evidence.indexes
    await indexes.refresh()
    ids: list[int] = []
    for start in range(0, 500, 25):  # a check after every filing
        async with runtime.sessionmaker() as session:
            ids += await _listed(session, member, fps[start : start + 25])
            await session.commit()
        await indexes.refresh()
        for query in fps[start : start + 25 : 12]:
            assert indexes.listings.search(query.tobytes(), 31) == _brute(
                ids, fps[: len(ids)], query, 31
            )
    for _ in range(500):  # bounded wait for the last background step
        if indexes.listings.compaction() is None:
            break
        await asyncio.sleep(0.01)
    assert indexes.listings.compaction() is None
    assert 1 < indexes.listings.segments <= 6
    for query in fps[::50]:
        assert indexes.listings.search(query.tobytes(), 31) == _brute(ids, fps, query, 31)
