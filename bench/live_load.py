"""What loading the live set costs in memory: the COPY held whole, against parsed as it comes.

The live set (ledger/scoring/live.py) is loaded with one binary COPY of 26 bytes a
subject. This makes that stream for ``--subjects`` live subjects (random keys, as MD5
prefixes are), feeds it in 64 KiB chunks as asyncpg's sink receives it, and builds the
two sorted arrays a lookup searches, each way in a fresh process: ``whole`` as the load
did until 2026-12-06 (every chunk kept, joined, parsed, sorted, copied out through
``tobytes``), ``streamed`` as ``CopyParser`` does now. It prints, per way, the seconds,
the process's peak resident memory (``VmHWM``) and what it keeps resident once the
load is done. The database's side (the ``GROUP BY`` that makes the rows) is the same
either way and is left out.

With ``--database`` the stream is the live set's own COPY from a seeded database
(bench/risk_query.py's, kept), read through asyncpg as a server reads it, so its
buffers count too.

With ``--serve`` (and ``--database``) it starts ``ledger serve`` itself, one worker on
that database, with the live set off and then on, and prints the worker's resident and
peak memory once it is ready and the set loaded, and how long that took.

    .venv/bin/python -m bench.live_load [--subjects 10000000]
    .venv/bin/python -m bench.live_load \\
        --database postgresql://postgres@127.0.0.1:5432/ledger_bench_10000000 [--serve]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import struct
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path

import asyncpg
import numpy as np

from bench.common import running_server
from bench.risk_query import _sqlalchemy_url, _wait_for_live_sets
from ledger.scoring.live import _HEADER, _ROW, SNAPSHOT, CopyParser

CHUNK = 64 * 1024


def _write_stream(subjects: int, path: Path) -> None:
    """The COPY for ``subjects`` rows, into ``path`` (made before any load is measured)."""
    rng = np.random.default_rng(19)
    rows = np.empty(subjects, dtype=_ROW)
    rows["n"], rows["l1"], rows["l2"] = 2, 8, 8
    rows["key"] = rng.integers(-(2**63), 2**63 - 1, subjects, dtype=np.int64)
    rows["until"] = rng.integers(1_800_000_000, 1_950_000_000, subjects, dtype=np.int64)
    with path.open("wb") as out:
        out.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
        out.write(rows.tobytes())
        out.write(struct.pack(">h", -1))


def _chunks(path: Path) -> Iterator[bytes]:
    """The stream as a socket delivers it: a fresh object per chunk."""
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            yield chunk


class _Whole:
    """The load as it was (ledger/scoring/live.py before 2026-12-06)."""

    def __init__(self) -> None:
        self.kept: list[bytes] = []

    async def feed(self, chunk: bytes) -> None:
        self.kept.append(chunk)

    def result(self) -> tuple[Sequence[int], Sequence[int]]:
        data = b"".join(self.kept)
        self.kept.clear()
        rows = np.frombuffer(data, dtype=_ROW, offset=_HEADER, count=(len(data) - 21) // 26)
        keys, until = rows["key"].astype(np.int64), rows["until"].astype(np.int64)
        del rows, data
        order = np.argsort(keys, kind="stable")
        keys, until = keys[order], until[order]
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        keys, until = keys[starts], np.maximum.reduceat(until, starts)
        return array("q", keys.tobytes()), array("q", until.tobytes())


class _Streamed:
    """The load as it is (``CopyParser``)."""

    def __init__(self) -> None:
        self.parser = CopyParser()

    async def feed(self, chunk: bytes) -> None:
        self.parser.feed(chunk)

    def result(self) -> tuple[Sequence[int], Sequence[int]]:
        return self.parser.sorted()


async def _load(sink: _Whole | _Streamed, source: str) -> None:
    """Feed ``sink`` the COPY from ``source``: a file written by ``_write_stream``, or a
    database URL (the live set's own statement through asyncpg, as the server runs it)."""
    if not source.startswith("postgresql://"):
        for chunk in _chunks(Path(source)):
            await sink.feed(chunk)
        return
    conn = await asyncpg.connect(source)
    try:
        await conn.copy_from_query(SNAPSHOT, output=sink.feed, format="binary")
    finally:
        await conn.close()


def _resident_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_mib() -> float:
    """This process's peak resident memory since its exec (``VmHWM``). Not ``ru_maxrss``:
    Linux carries that over from the parent through fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _one(way: str, source: str) -> None:
    gc.collect()
    before = _resident_mib()
    start = time.perf_counter()
    sink = _Whole() if way == "whole" else _Streamed()
    asyncio.run(_load(sink, source))
    keys, until = sink.result()
    seconds = time.perf_counter() - start
    gc.collect()
    after = _resident_mib()
    peak = _peak_mib()
    arrays = (len(keys) + len(until)) * 8 / 2**20
    print(
        f"| {way} | {len(keys):,} | {seconds:.2f} | {peak - before:,.0f} | "
        f"{after - before:,.0f} | {arrays:,.0f} |",
        flush=True,
    )


def _served(database: str) -> None:
    print("| live set | ready after (s) | resident (MiB) | peak (MiB) |")
    print("|---|---:|---:|---:|")
    for live in ("false", "true"):
        settings = {
            "LEDGER_DATABASE_URL": _sqlalchemy_url(database),
            "LEDGER_WORKERS": "1",  # uvicorn then runs the app in the process it starts
            "LEDGER_LIVE_SUBJECTS_ENABLED": live,
        }
        start = time.monotonic()
        with running_server(settings) as server:
            _wait_for_live_sets(server.base, 1, settings)
            ready = time.monotonic() - start
            rss, peak = server.rss_mib()
        print(f"| {'on' if live == 'true' else 'off'} | {ready:.0f} | {rss:,.0f} | {peak:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=10_000_000)
    parser.add_argument("--way", choices=["whole", "streamed"], help=argparse.SUPPRESS)
    parser.add_argument(
        "--database", metavar="URL", help="load from this seeded database instead (as served)"
    )
    parser.add_argument("--serve", action="store_true", help="measure a server on --database")
    parser.add_argument("--source", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        if not args.database:
            parser.error("--serve needs --database")
        _served(args.database)
        return
    if args.way:
        _one(args.way, args.source)
        return
    with tempfile.TemporaryDirectory(prefix="ledger-live-load-") as tmp:
        source = args.database
        if source is None:
            source = str(Path(tmp) / "copy.bin")
            _write_stream(args.subjects, Path(source))
        print(
            "| load | subjects | seconds | peak above start (MiB) | kept after (MiB) "
            "| the arrays (MiB) |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for way in ("whole", "streamed", "whole", "streamed"):
            cmd = [sys.executable, "-m", "bench.live_load", "--way", way, "--source", source]
            subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
