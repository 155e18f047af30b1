"""Near-copy search over stored fingerprints: multi-index hashing, exact.

A query asks for every stored fingerprint within ``t`` bits (Hamming distance) of a
claim photo's. Scanning them all costs O(n) per photo: at 10,000,000 fingerprints, a
quarter of a second even vectorised. Multi-index hashing (Norouzi, Punjani and Fleet,
"Fast Search in Hamming Space with Multi-Index Hashing", CVPR 2012) cuts the 256 bits
into ``m`` chunks. If two hashes differ in at most ``t`` bits, then by the pigeonhole
principle some chunk differs in at most ``t // m`` bits. So the candidates are the
stored fingerprints that, in some chunk, equal the query's chunk give or take that
many bits: a few hundred sorted-array lookups per chunk. Every candidate is then
checked at full length, so the answer is exactly the brute-force one (a test compares
them), only cheaper.

How many chunks: Norouzi et al. advise about ``256 / log2(n)``; at 10M that is 11.
With 11 chunks of 23 or 24 bits, ``31 // 11 = 2``: 301 lookups per chunk, and at 10M
about 3,000 candidates per query (1.2 per lookup). Sixteen chunks of 16 bits (one bit
of slack, 17 lookups per chunk) were measured first: 41,000 candidates, twice the
time, since gathering candidates from memory is the cost (docs/benchmarks.md).

Why this over the alternatives: a BK-tree or VP-tree degrades towards a scan at radius
31 of 256; LSH is approximate (recall below 1.0), and the ledger must find every match
it has; a PostgreSQL index on chunk columns costs a heap fetch per candidate. The index
lives in each process's memory (about 130 bytes per fingerprint), is built from the
database, and takes new rows as they are committed; which stored photos may still
match (a withdrawn report's may not) is decided by the database at query time
(ledger/evidence/service.py), so the index never has to be told of a withdrawal.

Fingerprints here are the keyed transforms (ledger/evidence/keys.py); distances are the
same as between the raw hashes.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Bit widths of the chunks, most significant first: 3 x 24 + 8 x 23 = 256.
WIDTHS = (24, 24, 24, 23, 23, 23, 23, 23, 23, 23, 23)
CHUNKS = len(WIDTHS)
_STARTS = tuple(itertools.accumulate(WIDTHS, initial=0))[:-1]
TAIL_LIMIT = 65_536  # rows kept unsorted (scanned) before upkeep sorts them into a segment

U8 = np.ndarray[Any, np.dtype[np.uint8]]
I64 = np.ndarray[Any, np.dtype[np.int64]]
U32 = np.ndarray[Any, np.dtype[np.uint32]]


@functools.cache
def _neighbour_masks(width: int, radius: int) -> U32:
    """Every ``width``-bit XOR mask of at most ``radius`` set bits."""
    masks = [
        sum(1 << bit for bit in bits)
        for r in range(radius + 1)
        for bits in itertools.combinations(range(width), r)
    ]
    return np.asarray(masks, dtype=np.uint32)


def _chunks(fingerprints: U8) -> U32:
    """(n, 32) bytes as (n, CHUNKS) chunk values, read from the big-endian bit string."""
    big = np.ascontiguousarray(fingerprints).view(">u8").reshape(-1, 4).astype(np.uint64)
    out = np.empty((len(big), CHUNKS), dtype=np.uint32)
    for j, (start, width) in enumerate(zip(_STARTS, WIDTHS, strict=True)):
        word, offset = divmod(start, 64)
        mask = np.uint64((1 << width) - 1)
        end = offset + width
        if end <= 64:
            value = big[:, word] >> np.uint64(64 - end)
        else:  # the chunk spans two words
            value = (big[:, word] << np.uint64(end - 64)) | (
                big[:, word + 1] >> np.uint64(128 - end)
            )
        out[:, j] = value & mask
    return out


@dataclass
class _Segment:
    """Fingerprints sorted once per chunk, for the lookups."""

    ids: I64
    words: np.ndarray[Any, np.dtype[np.uint64]]  # (n, 4)
    order: list[np.ndarray[Any, Any]] = field(default_factory=list)  # int32 rows
    keys: list[U32] = field(default_factory=list)

    @classmethod
    def build(cls, ids: I64, fingerprints: U8) -> _Segment:
        chunks = _chunks(fingerprints)
        segment = cls(ids=ids, words=_words(fingerprints))
        for j in range(CHUNKS):
            # Row numbers fit in 32 bits for up to 2**31 rows: half the memory of int64.
            order = np.argsort(chunks[:, j]).astype(np.int32)  # (any order within a key)
            segment.order.append(order)
            segment.keys.append(chunks[order, j])
        return segment

    def candidates(self, query_chunks: U32, radius: int) -> I64:
        """Row numbers whose chunk is within ``radius`` bits of the query's, in any
        chunk; a row may come more than once (the caller's exact check is unaffected)."""
        found: list[np.ndarray[Any, Any]] = []
        for j, width in enumerate(WIDTHS):
            # Distinct, since the masks are; sorted, so each binary search starts where
            # the last one ended.
            wanted = np.sort(query_chunks[j] ^ _neighbour_masks(width, radius))
            keys = self.keys[j]
            lo = np.searchsorted(keys, wanted, side="left")
            hi = np.searchsorted(keys, wanted, side="right")
            sizes = hi - lo
            total = int(sizes.sum())
            if not total:
                continue
            # Every position in the ranges [lo, hi), at once: lo repeated per range,
            # plus 0, 1, 2, … within each range.
            starts = np.repeat(lo - np.concatenate(([0], np.cumsum(sizes)[:-1])), sizes)
            found.append(self.order[j][starts + np.arange(total)])
        if not found:
            return np.empty(0, dtype=np.int64)
        return np.concatenate(found).astype(np.int64)


def _words(fingerprints: U8) -> np.ndarray[Any, np.dtype[np.uint64]]:
    return np.ascontiguousarray(fingerprints).view(np.uint64).reshape(-1, 4)


def distances(words: np.ndarray[Any, Any], query: U8) -> np.ndarray[Any, np.dtype[np.intp]]:
    """Hamming distance from ``query`` to each row of ``words`` ((n, 4) uint64)."""
    q = np.ascontiguousarray(query).view(np.uint64)
    counted: np.ndarray[Any, np.dtype[np.intp]] = np.bitwise_count(words ^ q).sum(axis=1)
    return counted


@dataclass(frozen=True, slots=True)
class Hit:
    id: int
    distance: int


@dataclass(frozen=True, slots=True)
class Compaction:
    """One step of upkeep, planned against a snapshot: the first ``tail_rows`` of the
    tail and the last ``len(segments)`` segments become one segment. ``build`` reads
    only arrays that never change, so it may run in another thread while searches go
    on; ``FingerprintIndex.apply`` then swaps the result in."""

    segments: tuple[_Segment, ...]
    tail_ids: I64
    tail_fps: U8
    generation: int  # the index's, when planned: a plan applies to that state alone

    @property
    def tail_rows(self) -> int:
        return len(self.tail_ids)

    def build(self) -> _Segment:
        ids = np.concatenate([*(s.ids for s in self.segments), self.tail_ids])
        fps = np.concatenate(
            [*(s.words.view(np.uint8).reshape(-1, 32) for s in self.segments), self.tail_fps]
        )
        return _Segment.build(ids, fps)


class FingerprintIndex:
    """Stored fingerprints by id; ``search`` returns every one within ``max_distance``.

    New rows go to an unsorted tail, scanned in full by each search. Upkeep sorts the
    tail into a segment and merges segments of like size (a log-structured merge: at
    most about log2(n / TAIL_LIMIT) segments, each row re-sorted that many times in
    its life), so adding rows never waits for a rebuild of everything stored.
    """

    def __init__(self) -> None:
        self._segments: tuple[_Segment, ...] = ()
        self._tail_ids: I64 = np.empty(0, dtype=np.int64)
        self._tail_fps: U8 = np.empty((0, 32), dtype=np.uint8)
        self._generation = 0  # compactions applied

    def __len__(self) -> int:
        return sum(len(s.ids) for s in self._segments) + len(self._tail_ids)

    @property
    def segments(self) -> int:
        return len(self._segments)

    def add(self, ids: I64, fingerprints: U8) -> None:
        """Add rows: ids and (n, 32) fingerprints, each id once (the caller sees to it)."""
        if not len(ids):
            return
        self._tail_ids = np.concatenate([self._tail_ids, ids.astype(np.int64)])
        self._tail_fps = np.concatenate(
            [self._tail_fps, np.ascontiguousarray(fingerprints, np.uint8).reshape(-1, 32)]
        )

    def compaction(self, *, everything: bool = False) -> Compaction | None:
        """The upkeep due now, if any: the tail once it holds ``TAIL_LIMIT`` rows (or
        any, with ``everything``), with the segments it has grown as large as."""
        rows = len(self._tail_ids)
        if not rows or (rows < TAIL_LIMIT and not everything):
            return None
        taken = 0
        size = rows
        for segment in reversed(self._segments):
            if not everything and len(segment.ids) > 2 * size:
                break
            taken += 1
            size += len(segment.ids)
        inputs = self._segments[len(self._segments) - taken :]
        return Compaction(inputs, self._tail_ids[:rows], self._tail_fps[:rows], self._generation)

    def apply(self, plan: Compaction, built: _Segment) -> None:
        """Swap a built compaction in. Rows added since it was planned stay in the tail."""
        if plan.generation != self._generation:
            raise RuntimeError("the index changed under a compaction")
        kept = len(self._segments) - len(plan.segments)
        self._generation += 1
        self._segments = (*self._segments[:kept], built)
        self._tail_ids = self._tail_ids[plan.tail_rows :]
        self._tail_fps = self._tail_fps[plan.tail_rows :]

    def merge(self) -> None:
        """Fold everything into one sorted segment, here and now."""
        plan = self.compaction(everything=True)
        if plan is not None:
            self.apply(plan, plan.build())

    def search(self, query: bytes, max_distance: int) -> list[Hit]:
        """Every stored fingerprint within ``max_distance`` bits of ``query``, nearest
        first: the same answer as comparing against every one."""
        q = np.frombuffer(query, dtype=np.uint8)
        hits: list[Hit] = []
        segments, tail_ids, tail_fps = self._segments, self._tail_ids, self._tail_fps
        if segments:
            query_chunks = _chunks(q.reshape(1, 32))[0]
        for segment in segments:
            rows = segment.candidates(query_chunks, max_distance // CHUNKS)
            d = distances(segment.words[rows], q)
            near = np.unique(rows[d <= max_distance])  # a row found in two chunks, once
            d_near = distances(segment.words[near], q)
            hits += [Hit(int(i), int(x)) for i, x in zip(segment.ids[near], d_near, strict=True)]
        if len(tail_ids):
            d = distances(_words(tail_fps), q)
            close = d <= max_distance
            hits += [Hit(int(i), int(x)) for i, x in zip(tail_ids[close], d[close], strict=True)]
        return sorted(hits, key=lambda h: (h.distance, h.id))
