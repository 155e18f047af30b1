"""Scale-out: the risk query's throughput with 1, 2 and 4 API processes on one
PostgreSQL, beside one audit sequencer, all started by this one command.

Seeds a database once (kept between runs with --keep-database), then for each process
count starts `ledger serve --workers N` with the sequencer off, plus one `ledger audit
sequencer`, and drives POST /v1/risk/query with wrk (64 connections, a random seeded
subject per request, runs interleaved: 1, 2, 4, 1, 2, 4 … so drift hits every count).
Prints req/s, p50, p99 and the ledger's CPU per answer for each, checks that every
answer was audited and the sequencer kept up, and reads /metrics once to show the
workers' figures added up.

    .venv/bin/python -m bench.scale_out --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import uuid
from pathlib import Path

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from bench.common import WrkResult, running_server, scratch_postgres
from bench.risk_query import (
    _QUERIED,
    LUA,
    _count,
    _measure,
    _sequencer,
    drained,
    ensure_seeded,
    pool_of,
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", required=True, metavar="URL")
    parser.add_argument("--subjects", type=int, default=200_000)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--keep-database", metavar="NAME")
    args = parser.parse_args()
    rng = random.Random(42)
    pool = pool_of("reported", args.subjects, rng)
    results: dict[int, list[tuple[WrkResult, float, int]]] = {n: [] for n in args.processes}
    lags: dict[int, list[tuple[int, float]]] = {n: [] for n in args.processes}
    summed: dict[int, float] = {}
    busy: dict[int, list[float]] = {}
    with scratch_postgres(args.postgres, keep=args.keep_database) as url:
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        base_env = {"LEDGER_DATABASE_URL": url, "LEDGER_AUDIT_SEQUENCER_ENABLED": "false"}
        args.reports, seeded = ensure_seeded(dsn, args.subjects)
        for _round in range(args.rounds):
            for count in args.processes:
                env = base_env | {"LEDGER_WORKERS": str(count)}
                with running_server(env) as server, _sequencer(server) as pids:
                    token = server.token(str(_a_member(dsn)), "risk:read")
                    with tempfile.TemporaryDirectory() as tmp:
                        lua = Path(tmp) / "risk.lua"
                        lua.write_text(LUA % (",".join(f'"{s}"' for s in pool), token))
                        before = _ticks()
                        run = _measure(
                            f"{server.base}/v1/risk/query",
                            pids,
                            str(lua),
                            args.seconds,
                            args.connections,
                            audited=lambda: _count(dsn, _QUERIED),
                        )
                    busy.setdefault(count, []).append(_busy(before))
                    results[count].append((run.result, run.cpu_us, run.audited or 0))
                    summed[count] = _answered(server.base)
                    lags[count].append(drained(dsn))
    _print(args, results=results, lags=lags, summed=summed, seeded=seeded, busy=busy)


def _ticks() -> tuple[int, int]:
    """(idle, total) CPU ticks of the whole machine, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)


def _busy(before: tuple[int, int]) -> float:
    """The share of all cores busy since ``before`` (the ledger, PostgreSQL, wrk)."""
    idle, total = _ticks()
    return 1 - (idle - before[0]) / max(1, total - before[1])


def _a_member(dsn: str) -> uuid.UUID:
    async def go() -> uuid.UUID:
        conn = await asyncpg.connect(dsn)
        try:
            return uuid.UUID(str(await conn.fetchval("SELECT id FROM members LIMIT 1")))
        finally:
            await conn.close()

    return asyncio.run(go())


def _answered(base: str) -> float:
    """Risk answers counted by /metrics, over every worker."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "ledger_http_requests_total" and s.labels.get("route") == "/v1/risk/query"
    )


def _print(
    args: argparse.Namespace,
    *,
    results: dict[int, list[tuple[WrkResult, float, int]]],
    lags: dict[int, list[tuple[int, float]]],
    summed: dict[int, float],
    seeded: float | None,
    busy: dict[int, list[float]],
) -> None:
    cores = os.cpu_count()
    print(
        f"\n## Scale-out ({args.subjects:,} subjects, {args.reports:,} reports; "
        f"{cores} cores shared by the ledger, PostgreSQL and wrk)\n"
    )
    if seeded:
        print(f"seeded in {seeded:.0f} s\n")
    print(
        f"wrk, 2 threads, {args.connections} connections, {args.seconds} s per run, "
        f"{args.rounds} interleaved rounds; one `ledger audit sequencer` beside the API:\n"
    )
    print(
        "| API processes | req/s (median) | runs | p50 ms | p99 ms | CPU per answer "
        "| machine busy | audited / answered | waiting at the end | /metrics count |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    first = None
    for count, runs in results.items():
        rates = [r.requests_per_second for r, _, _ in runs]
        median = statistics.median(rates)
        first = first or median
        best = max(runs, key=lambda run: run[0].requests_per_second)[0]
        cpu = statistics.median(c for _, c, _ in runs)
        audited = sum(a for _, _, a in runs)
        answered = sum(r.requests for r, _, _ in runs)
        waiting = max(w for w, _ in lags[count])
        print(
            f"| {count} | {median:,.0f} (x{median / first:.2f}) | "
            f"{', '.join(f'{r:,.0f}' for r in rates)} | {best.p50_ms:.2f} | {best.p99_ms:.2f} | "
            f"{cpu:,.0f} µs | {statistics.median(busy[count]):.0%} | {audited:,} / {answered:,} | "
            f"{waiting:,} | {summed[count]:,.0f} |"
        )


if __name__ == "__main__":
    main()
