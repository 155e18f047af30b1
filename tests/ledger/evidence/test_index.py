"""The index answers exactly what a brute-force scan answers, at every threshold up to
47 bits: for fingerprints in sorted segments, in the unsorted tail, across both, and
through compactions planned while rows keep coming."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.evidence import index as index_module
from ledger.evidence.index import FingerprintIndex, Hit, distances


def _brute(ids: np.ndarray, fps: np.ndarray, query: np.ndarray, t: int) -> list[Hit]:
    d = distances(np.ascontiguousarray(fps).view(np.uint64).reshape(-1, 4), query)
    return sorted(
        (Hit(int(i), int(x)) for i, x in zip(ids, d, strict=True) if x <= t),
        key=lambda h: (h.distance, h.id),
    )


def _near(rng: np.random.Generator, base: np.ndarray, bits: int) -> np.ndarray:
    """``base`` with ``bits`` distinct bits flipped."""
    flat = np.unpackbits(base)
    flat[rng.choice(256, size=bits, replace=False)] ^= 1
    return np.packbits(flat)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), t=st.integers(0, 47), merged=st.booleans())
def test_the_index_finds_exactly_what_a_scan_finds(seed: int, t: int, merged: bool) -> None:
    rng = np.random.default_rng(seed)
    sources = rng.integers(0, 256, size=(20, 32), dtype=np.uint8)
    # Near copies of each source at every distance from 0 to 60, and unrelated noise.
    near = [_near(rng, sources[k % 20], k % 61) for k in range(600)]
    fps = np.concatenate([np.stack(near), rng.integers(0, 256, (400, 32), dtype=np.uint8)])
    ids = np.arange(1, len(fps) + 1, dtype=np.int64) * 7
    index = FingerprintIndex()
    index.add(ids[:700], fps[:700])
    if merged:
        index.merge()
    index.add(ids[700:], fps[700:])
    for query in sources[:5]:
        assert index.search(query.tobytes(), t) == _brute(ids, fps, query, t)


def test_rows_move_from_the_tail_to_the_base_without_changing_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(index_module, "TAIL_LIMIT", 100)
    rng = np.random.default_rng(3)
    fps = rng.integers(0, 256, size=(1000, 32), dtype=np.uint8)
    ids = np.arange(1000, dtype=np.int64)
    index = FingerprintIndex()
    for start in range(0, 1000, 30):  # merges happen along the way
        index.add(ids[start : start + 30], fps[start : start + 30])
    assert len(index) == 1000
    for query in fps[::97]:
        found = index.search(query.tobytes(), 31)
        assert found == _brute(ids, fps, query, 31)
        assert found[0].distance == 0


def test_an_empty_index_finds_nothing() -> None:
    assert FingerprintIndex().search(bytes(32), 31) == []


def test_rows_added_while_a_compaction_is_built_stay_in_the_tail() -> None:
    rng = np.random.default_rng(4)
    fps = rng.integers(0, 256, size=(300, 32), dtype=np.uint8)
    ids = np.arange(300, dtype=np.int64)
    index = FingerprintIndex()
    index.add(ids[:200], fps[:200])
    plan = index.compaction(everything=True)
    assert plan is not None
    index.add(ids[200:], fps[200:])  # while the plan is built elsewhere
    index.apply(plan, plan.build())
    assert index.segments == 1
    assert len(index) == 300
    for query in fps[::29]:
        assert index.search(query.tobytes(), 31) == _brute(ids, fps, query, 31)
    with pytest.raises(RuntimeError, match="changed under"):
        index.apply(plan, plan.build())  # a plan is applied once


def test_segments_stay_few_as_rows_keep_coming(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "TAIL_LIMIT", 10)
    rng = np.random.default_rng(5)
    fps = rng.integers(0, 256, size=(2000, 32), dtype=np.uint8)
    index = FingerprintIndex()
    most = 0
    for start in range(0, 2000, 10):
        index.add(np.arange(start, start + 10, dtype=np.int64), fps[start : start + 10])
        while (plan := index.compaction()) is not None:
            index.apply(plan, plan.build())
        most = max(most, index.segments)
    assert most <= 9  # about log2(2000 / 10) + 1, not 200
    ids = np.arange(2000, dtype=np.int64)
    for query in fps[::211]:
        assert index.search(query.tobytes(), 31) == _brute(ids, fps, query, 31)


def test_the_chunks_cover_every_bit_once_in_order() -> None:
    """Bit k of the 256 (from the first byte's most significant bit) lands in exactly
    one chunk, at its place there: the pigeonhole argument needs a partition."""
    seen = []
    for k in range(256):
        single = np.zeros(32, dtype=np.uint8)
        single[k // 8] = 0x80 >> (k % 8)
        chunks = index_module._chunks(single.reshape(1, 32))[0]
        (where,) = np.flatnonzero(chunks)
        start = sum(index_module.WIDTHS[:where])
        width = index_module.WIDTHS[where]
        assert chunks[where] == 1 << (width - 1 - (k - start))
        seen.append(int(where))
    assert seen == sorted(seen)
    assert sum(index_module.WIDTHS) == 256
