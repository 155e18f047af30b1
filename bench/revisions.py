"""Two revisions (or settings) of the ledger on the same risk-query load: where a change
moved the CPU, or the tail.

The throughput of one run moves by a third on a shared 2-core machine from minute to
minute, more than most changes do; the CPU each answer costs, split by process, moves
far less. So this runs ``--base`` (a git revision, checked out in a scratch worktree)
and the working tree one at a time, alternating, on the same kept database and the
same subjects (bench/risk_query.py's realistic or reported mix), and prints for each
run: answers a second, and per answer the server workers' user and system CPU, the
sequencer's CPU, PostgreSQL's CPU, the workers' read and write system calls, and the
audit events a commit (the writer's batch size).

    .venv/bin/python -m bench.revisions --base HEAD~3 \\
        --database postgresql://postgres@127.0.0.1:5432/ledger_bench_1000000 [--rounds 4]

Without ``--base`` both sides run the working tree, and ``--base-set`` and ``--set``
(``LEDGER_NAME=VALUE``, repeatable) give each side its settings: a setting that concerns
the sequencer (one per database) can only be compared this way, one ledger at a time.
``--paced RATE`` offers that many requests a second (each of the 64 connections pausing
an exponential time before each request) instead of saturating, and the lines show the
latencies too.

The database is one bench/risk_query.py seeded and kept (``--keep-database``).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import wrk
from bench.risk_query import (
    LUA,
    _database_cpu_seconds,
    _scripts,
    _sqlalchemy_url,
    pool_of,
    running_ledger,
)

ROOT = Path(__file__).resolve().parent.parent
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Figures:
    rate: float
    user_us: float  # the workers', per answer
    system_us: float
    sequencer_us: float
    database_us: float
    reads: float  # the workers' read system calls, per answer
    writes: float
    batch: float  # audit events per commit
    p50_ms: float
    p99_ms: float


def _counters(pid: int) -> tuple[float, float, int, int]:
    """(user s, system s, read calls, write calls) of one process."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(stat[11]) / _TICK, int(stat[12]) / _TICK, int(io["syscr"]), int(io["syscw"])


def _batch(base: str) -> tuple[float, float]:
    """(sum, count) of the audit writer's batch sizes, from /metrics."""
    found = {"sum": 0.0, "count": 0.0}
    for line in httpx.get(f"{base}/metrics", timeout=30).text.splitlines():
        for kind in found:
            if line.startswith(f"ledger_audit_writer_batch_size_{kind} "):
                found[kind] = float(line.split()[1])
    return found["sum"], found["count"]


def measure(  # noqa: PLR0917
    database: str,
    pythonpath: str | None,
    lua_subjects: str,
    seconds: int,
    settings: dict[str, str] | None = None,
    pause_ms: float | None = None,
) -> Figures:
    settings = {**(settings or {}), **({"PYTHONPATH": pythonpath} if pythonpath else {})}
    with running_ledger(_sqlalchemy_url(database), 2, 0, settings) as ledger:
        tmp = Path(tempfile.mkdtemp(prefix="ledger-revisions-"))
        script = _scripts(tmp, "load", LUA % (lua_subjects, ledger.token), pause_ms)
        wrk(ledger.url, connections=64, seconds=3, script=script)  # warm
        server, sequencer = ledger.pids
        # uvicorn's workers (and multiprocessing's resource tracker, which costs nothing)
        children = Path(f"/proc/{server}/task/{server}/children").read_text().split()
        workers = [int(child) for child in children]
        before = [_counters(w) for w in workers]
        seq0, db0, batch0 = (
            _counters(sequencer),
            _database_cpu_seconds(),
            _batch(ledger.server.base),
        )
        result = wrk(ledger.url, connections=64, seconds=seconds, script=script)
        after = [_counters(w) for w in workers]
        seq1, db1, batch1 = (
            _counters(sequencer),
            _database_cpu_seconds(),
            _batch(ledger.server.base),
        )
    n = max(1, result.requests)

    def delta(i: int) -> float:
        return sum(a[i] - b[i] for a, b in zip(after, before, strict=True)) / n

    batches = batch1[1] - batch0[1]
    return Figures(
        rate=result.requests_per_second,
        user_us=delta(0) * 1e6,
        system_us=delta(1) * 1e6,
        sequencer_us=(seq1[0] + seq1[1] - seq0[0] - seq0[1]) / n * 1e6,
        database_us=(db1 - db0) / n * 1e6,
        reads=delta(2),
        writes=delta(3),
        batch=(batch1[0] - batch0[0]) / batches if batches else 0.0,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
    )


def _line(name: str, f: Figures) -> str:
    return (
        f"| {name} | {f.rate:,.0f} | {f.user_us:.0f} | {f.system_us:.0f} | {f.sequencer_us:.0f} "
        f"| {f.database_us:.0f} | {f.reads:.2f} | {f.writes:.2f} | {f.batch:.1f} "
        f"| {f.p50_ms:.2f} | {f.p99_ms:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", help="the git revision to compare with (default: this tree)")
    parser.add_argument("--base-set", action="append", default=[], metavar="LEDGER_NAME=VALUE")
    parser.add_argument("--set", action="append", default=[], metavar="LEDGER_NAME=VALUE")
    parser.add_argument("--paced", type=float, metavar="RATE", help="requests a second offered")
    parser.add_argument("--database", required=True, metavar="URL", help="a seeded database")
    parser.add_argument("--subjects", type=int, default=1_000_000, help="seeded in it")
    parser.add_argument("--mix", choices=["realistic", "reported"], default="realistic")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=12)
    args = parser.parse_args()
    for setting in [*args.set, *args.base_set]:
        if not setting.startswith("LEDGER_") or "=" not in setting:
            parser.error(f"settings are LEDGER_NAME=VALUE, not {setting!r}")
    subjects = ",".join(f'"{s}"' for s in pool_of(args.mix, args.subjects, random.Random(19)))
    pause_ms = 64 / args.paced * 1000 if args.paced else None
    settings = {
        "base": dict(s.split("=", 1) for s in args.base_set),
        "this tree": dict(s.split("=", 1) for s in args.set),
    }
    with tempfile.TemporaryDirectory(prefix="ledger-base-") as tree:
        worktree = Path(tree) / "base"
        if args.base:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), args.base],
                check=True, capture_output=True,
            )  # fmt: skip
        try:
            runs: dict[str, list[Figures]] = {"base": [], "this tree": []}
            paths = {"base": str(worktree) if args.base else None, "this tree": None}
            print("| revision | answers/s | user µs | system µs | sequencer µs | PostgreSQL µs "
                  "| reads | writes | events a commit | p50 ms | p99 ms |")  # fmt: skip
            print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for round_ in range(args.rounds):
                order = ["base", "this tree"] if round_ % 2 == 0 else ["this tree", "base"]
                for name in order:
                    figures = measure(
                        args.database, paths[name], subjects, args.seconds,
                        settings[name], pause_ms,
                    )  # fmt: skip
                    runs[name].append(figures)
                    print(_line(name, figures), flush=True)
            for name, figures_list in runs.items():
                medians = Figures(*(
                    statistics.median(getattr(f, field) for f in figures_list)
                    for field in Figures.__dataclass_fields__
                ))  # fmt: skip
                print(_line(f"**{name}, medians**", medians))
        finally:
            if args.base:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
                    check=False, capture_output=True,
                )  # fmt: skip


if __name__ == "__main__":
    main()
