"""The live set's load parses PostgreSQL's binary COPY as it arrives (ledger/scoring/live.py):
however the stream is cut into chunks, the result is the whole stream's."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.scoring import live
from ledger.scoring.live import CopyParser, LiveSubjects, parse_copy, sorted_set

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)


def copy_of(rows: list[tuple[int, int]]) -> bytes:
    """What ``COPY (SNAPSHOT) TO STDOUT (FORMAT binary)`` sends for ``rows``."""
    body = b"".join(struct.pack(">hiqiq", 2, 8, key, 8, until) for key, until in rows)
    return HEADER + body + TRAILER


ROWS = st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), st.integers(0, 2**40)), max_size=60)


@given(rows=ROWS, cuts=st.lists(st.integers(0, 2_000), max_size=12))
def test_any_cut_into_chunks_parses_as_the_whole(
    rows: list[tuple[int, int]], cuts: list[int]
) -> None:
    data = copy_of(rows)
    parser = CopyParser()
    start = 0
    for cut in sorted({c for c in cuts if c < len(data)}):
        parser.feed(data[start:cut])
        start = cut
    parser.feed(data[start:])
    keys, until = parser.result()
    assert keys.tolist() == [k for k, _ in rows]
    assert until.tolist() == [u for _, u in rows]


def test_rows_across_blocks_are_all_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "_BLOCK_ROWS", 4)
    rows = [(n * 7919 % 101 - 50, n) for n in range(23)]
    keys, until = parse_copy(copy_of(rows))
    assert keys.tolist() == [k for k, _ in rows]
    assert until.tolist() == [u for _, u in rows]
    sorted_keys, latest = sorted_set(keys, until)
    expected: dict[int, int] = {}
    for key, moment in rows:
        expected[key] = max(expected.get(key, 0), moment)
    assert list(sorted_keys) == sorted(expected)
    assert list(latest) == [expected[k] for k in sorted(expected)]


def test_an_empty_set_parses_to_nothing() -> None:
    keys, until = parse_copy(copy_of([]))
    assert (len(keys), len(until)) == (0, 0)
    sorted_keys, latest = sorted_set(keys, until)
    assert (len(sorted_keys), len(latest)) == (0, 0)
    live = LiveSubjects()  # and a set loaded from it answers no one from a read
    live.load(sorted_keys, latest, since=0)
    live.enabled = True
    assert not live.may_count("a" * 43, 0.0)


@pytest.mark.parametrize(
    "data",
    [
        copy_of([(1, 2)])[:-1],  # cut before its end
        copy_of([(1, 2)])[:-2],  # no trailer
        b"COPY!\n" + copy_of([(1, 2)])[6:],  # not a binary COPY
        HEADER + struct.pack(">hiqi", 2, 8, 1, 4) + b"\x00" * 8 + TRAILER,  # a 4-byte field
    ],
)
def test_a_stream_that_is_not_a_whole_copy_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="COPY"):
        parse_copy(data)
