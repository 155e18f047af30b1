"""The pre-refund risk query under load, against its ceiling, on PostgreSQL.

Seeds a scratch database with 1,000,000 subjects and 3,000,000 reports (COPY), starts
the real `ledger serve`, and drives POST /v1/risk/query with wrk (64 connections, a
random seeded subject per request); then does the same against bench/ceiling.py, a bare
Starlette endpoint making the same read with asyncpg. Prints req/s, p50, p99, the ratio,
and server CPU per request, and checks that every answer was audited and that the audit
sequencer kept up.

By default the ledger runs as deployed for throughput: `ledger serve` with
LEDGER_AUDIT_SEQUENCER_ENABLED=false beside one `ledger audit sequencer` process, whose
CPU is counted with the server's. `--sequencer in-process` measures the one-process setup.

    .venv/bin/python -m bench.risk_query --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from bench.common import (
    LEDGER,
    Server,
    WrkResult,
    free_port,
    running_server,
    scratch_postgres,
    wrk,
)
from ledger.reports.policy import add_years
from ledger.types import uuid7

CATEGORIES = ["forged_evidence", "empty_box", "wardrobing", "false_non_receipt", "other"]
LUA = """
local subjects = {%s}
request = function()
  local s = subjects[math.random(#subjects)]
  return wrk.format("POST", "/v1/risk/query", {["Content-Type"]="application/json",
    ["Authorization"]="Bearer %s"},
    '{"subject":"' .. s .. '","purpose":"refund_review","reference":"refund-1"}')
end
"""


def _pseudonyms(count: int, rng: random.Random) -> list[str]:
    return [base64.urlsafe_b64encode(rng.randbytes(32)).rstrip(b"=").decode() for _ in range(count)]


async def _seed(dsn: str, subjects: list[str], reports: int, member_ids: list[uuid.UUID]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        now = dt.datetime.now(dt.UTC)
        evidence = f'["{hashlib.sha256(b"e").hexdigest()}"]'
        rng = random.Random(7)
        step = 200_000
        for start in range(0, reports, step):
            rows = []
            for n in range(start, min(reports, start + step)):
                occurred = now - dt.timedelta(days=rng.randrange(30, 1500))
                confirmed = occurred + dt.timedelta(days=3)
                rows.append(
                    (
                        uuid7(),
                        member_ids[n % len(member_ids)],
                        f"seed-{n}",
                        subjects[n % len(subjects)],
                        CATEGORIES[n % 5],
                        "platform_review",
                        1000 + n % 5000,
                        "CNY",
                        evidence,
                        None,
                        occurred,
                        confirmed,
                        confirmed,
                        confirmed,
                        add_years(occurred, 5),
                        "active",
                        confirmed,
                        None,
                    )
                )
            await conn.copy_records_to_table(
                "reports",
                records=rows,
                columns=[
                    "id",
                    "member_id",
                    "case_ref",
                    "subject",
                    "category",
                    "basis",
                    "amount_minor",
                    "currency",
                    "evidence",
                    "fingerprint",
                    "occurred_at",
                    "confirmed_at",
                    "notified_at",
                    "filed_at",
                    "expires_at",
                    "state",
                    "state_changed_at",
                    "audit_event_id",
                ],
            )
        await conn.execute("ANALYZE reports")
    finally:
        await conn.close()


def _cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and its children (uvicorn's workers, when there are several)."""
    total = 0.0
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for child in children.read_text().split() if children.exists() else []:
        total += _cpu_seconds(int(child))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return total + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(  # noqa: PLR0917
    url: str,
    pids: list[int],
    lua: str,
    seconds: int,
    connections: int,
    audited: Callable[[], int] | None = None,
) -> tuple[WrkResult, float, int | None]:
    """wrk's figures, CPU per request of ``pids``, and the events ``audited`` counted."""
    wrk(url, connections=connections, seconds=3, script=lua)  # warm-up
    events0 = audited() if audited else None
    cpu0 = sum(_cpu_seconds(pid) for pid in pids)
    result = wrk(url, connections=connections, seconds=seconds, script=lua)
    cpu = sum(_cpu_seconds(pid) for pid in pids) - cpu0
    events = audited() - events0 if audited and events0 is not None else None
    return result, cpu / max(1, result.requests) * 1e6, events


def _count(dsn: str, sql: str) -> int:
    async def go() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    return asyncio.run(go())


_QUERIED = "SELECT count(*) FROM audit_events WHERE tag = 'risk:subject:queried'"
_WAITING = (
    "SELECT count(*) FROM audit_events e "
    "WHERE NOT EXISTS (SELECT 1 FROM audit_leaves l WHERE l.event_id = e.id)"
)


@contextmanager
def _sequencer(server: Server, *, separate: bool) -> Iterator[list[int]]:
    """The processes whose CPU counts as the ledger's: the server, and the sequencer."""
    if not separate:
        yield [server.pid]
        return
    proc = subprocess.Popen(
        [LEDGER, "audit", "sequencer"], env=server.env, stderr=subprocess.DEVNULL
    )
    try:
        yield [server.pid, proc.pid]
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _drained(dsn: str, timeout: float = 120.0) -> tuple[int, float]:
    """Events still waiting for the tree when the load stopped, and seconds to drain."""
    waiting = _count(dsn, _WAITING)
    t0 = time.monotonic()
    while _count(dsn, _WAITING) and time.monotonic() - t0 < timeout:
        time.sleep(0.2)
    return waiting, time.monotonic() - t0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", required=True, metavar="URL")
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--reports", type=int, default=3_000_000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument(
        "--keep-database",
        metavar="NAME",
        help="seed this database once and keep it for later runs (default: a scratch one)",
    )
    parser.add_argument("--only", choices=["ledger", "ceiling"], help="measure one side only")
    parser.add_argument("--workers", type=int, default=1, help="ledger server processes")
    parser.add_argument(
        "--connections", type=int, default=64, help="wrk connections (the target is at 64)"
    )
    parser.add_argument(
        "--sequencer",
        choices=["separate", "in-process"],
        default="separate",
        help="where the audit sequencer runs (default: its own process)",
    )
    parser.add_argument(
        "--paced",
        type=float,
        nargs="*",
        default=[0.5, 0.8],
        metavar="SHARE",
        help="also run paced at these shares of the ledger's saturated rate (default 0.5 0.8)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="LEDGER_NAME=VALUE",
        help="a setting for the ledger's processes, e.g. LEDGER_RISK_POOL_SIZE=4 (repeatable)",
    )
    args = parser.parse_args()
    rng = random.Random(42)
    subjects = _pseudonyms(args.subjects, rng)

    env = {"LEDGER_DATABASE_URL": "", "LEDGER_WORKERS": str(args.workers)}
    separate = args.sequencer == "separate"
    if separate:
        env["LEDGER_AUDIT_SEQUENCER_ENABLED"] = "false"
    for setting in args.set:
        name, _, value = setting.partition("=")
        if not name.startswith("LEDGER_") or not _:
            parser.error(f"--set takes LEDGER_NAME=VALUE, not {setting!r}")
        env[name] = value
    with scratch_postgres(args.postgres, keep=args.keep_database) as url:
        env["LEDGER_DATABASE_URL"] = url
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with running_server(env) as server, _sequencer(server, separate=separate) as pids:
            seeded = _ensure_seeded(server, dsn, subjects, args.reports)
            figures = _run(server, pids, dsn, subjects, rng, args)
            waiting, drain = _drained(dsn)
    _print(args, figures, seeded, waiting, drain)


def _print(
    args: argparse.Namespace,
    figures: Figures,
    seeded: float | None,
    waiting: int,
    drain: float,
) -> None:
    seeded_text = f"{args.subjects:,} subjects, {args.reports:,} reports" + (
        f" seeded in {seeded:.0f} s" if seeded else " (seeded earlier)"
    )
    print(f"\n## Risk query ({seeded_text})\n")
    print(
        f"wrk, 2 threads, {args.connections} connections; "
        f"the ledger with {args.workers} worker(s), sequencer {args.sequencer}:\n"
    )
    print("| endpoint | req/s | p50 ms | p99 ms | non-2xx | server CPU per request |")
    print("|---|---:|---:|---:|---:|---:|")
    ledger, ceiling = figures.ledger, figures.ceiling
    if ledger is not None:
        name = "POST /v1/risk/query (ledger: auth, score, audited)"
        print(f"{ledger.row(name)} {figures.ledger_cpu:,.0f} µs |")
    if ceiling is not None:
        name = "ceiling: Starlette + asyncpg, same read"
        print(f"{ceiling.row(name)} {figures.ceiling_cpu:,.0f} µs |")
    if ledger is not None and ceiling is not None:
        share = ledger.requests_per_second / ceiling.requests_per_second
        print(f"\nthe ledger serves {share:.0%} of the ceiling")
    if ledger is not None:
        print(
            f"audited: {figures.audited:,} risk-query events for {ledger.requests:,} answers "
            "(events also count requests still in flight when wrk stopped)"
        )
        print(
            f"sequencer: {waiting:,} events waiting for the tree at the end, {drain:.1f} s to drain"
        )
    if figures.paced:
        print(
            f"\nPaced: {args.connections} connections, each pausing a random (exponential) time "
            "after every answer; the pause is set from the ledger's saturated rate above:\n"
        )
        print("| offered | ledger req/s | p50 ms | p99 ms | ceiling req/s | p50 ms | p99 ms |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for share, led, bare in figures.paced:
            print(
                f"| {share:.0%} | {led.requests_per_second:,.0f} | {led.p50_ms:.2f} | "
                f"{led.p99_ms:.2f} | {bare.requests_per_second:,.0f} | {bare.p50_ms:.2f} | "
                f"{bare.p99_ms:.2f} |"
            )


def _ensure_seeded(server: Server, dsn: str, subjects: list[str], reports: int) -> float | None:
    """Seed unless a kept database already is; the seconds seeding took, if it did."""

    async def members() -> list[uuid.UUID]:
        conn = await asyncpg.connect(dsn)
        try:
            if await conn.fetchval("SELECT count(*) FROM reports") >= reports:
                return []
            return [r["id"] for r in await conn.fetch("SELECT id FROM members")]
        finally:
            await conn.close()

    existing = asyncio.run(members())
    if not existing and _seeded(dsn):
        return None
    names = [f"platform-{i}" for i in range(8 - len(existing))]
    created = [server.ledger("members", "create", "--name", n) for n in names]
    member_ids = existing + [uuid.UUID(m["id"]) for m in created if isinstance(m, dict)]
    t0 = time.perf_counter()
    asyncio.run(_seed(dsn, subjects, reports, member_ids))
    return time.perf_counter() - t0


def _seeded(dsn: str) -> bool:
    async def count() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM reports"))
        finally:
            await conn.close()

    return asyncio.run(count()) > 0


@dataclass
class Figures:
    ledger: WrkResult | None = None
    ledger_cpu: float = 0.0
    audited: int = 0
    ceiling: WrkResult | None = None
    ceiling_cpu: float = 0.0
    # (offered share of the ledger's saturated rate, ledger, ceiling), both paced alike
    paced: list[tuple[float, WrkResult, WrkResult]] = field(default_factory=list)


# Paced runs: each connection pauses for an exponentially distributed time after every
# answer, so requests arrive about as independent refunds do, at a rate the server can
# sustain, instead of as fast as it answers. wrk calls ``delay()`` before each request.
PACED = """
delay = function()
  return -math.log(1 - math.random()) * %f
end
"""


def _run(  # noqa: PLR0917
    server: Server,
    pids: list[int],
    dsn: str,
    subjects: list[str],
    rng: random.Random,
    args: argparse.Namespace,
) -> Figures:
    async def a_member() -> uuid.UUID:
        conn = await asyncpg.connect(dsn)
        try:
            return uuid.UUID(str(await conn.fetchval("SELECT id FROM members LIMIT 1")))
        finally:
            await conn.close()

    member_id = asyncio.run(a_member())
    token = server.token(str(member_id), "risk:read")
    pool = rng.sample(subjects, 5000)
    figures = Figures()
    url = f"{server.base}/v1/risk/query"
    with tempfile.TemporaryDirectory() as tmp:
        lua = Path(tmp) / "risk.lua"
        lua.write_text(LUA % (",".join(f'"{s}"' for s in pool), token))
        if args.only in (None, "ledger"):
            figures.ledger, figures.ledger_cpu, audited = _measure(
                url,
                pids,
                str(lua),
                args.seconds,
                args.connections,
                audited=lambda: _count(dsn, _QUERIED),
            )
            figures.audited = audited or 0
        if args.only in (None, "ceiling"):
            with _ceiling(dsn, pool[0]) as (ceiling_url, pid):
                figures.ceiling, figures.ceiling_cpu, _ = _measure(
                    ceiling_url, [pid], str(lua), args.seconds, args.connections
                )
        if figures.ledger is None or figures.ceiling is None:
            return figures
        for share in args.paced:
            pause_ms = args.connections / (share * figures.ledger.requests_per_second) * 1000
            paced = Path(tmp) / f"paced-{share}.lua"
            paced.write_text(lua.read_text() + PACED % pause_ms)
            ledger = wrk(url, connections=args.connections, seconds=args.seconds, script=str(paced))
            with _ceiling(dsn, pool[0]) as (ceiling_url, _pid):
                ceiling = wrk(
                    ceiling_url,
                    connections=args.connections,
                    seconds=args.seconds,
                    script=str(paced),
                )
            figures.paced.append((share, ledger, ceiling))
    return figures


@contextmanager
def _ceiling(dsn: str, subject: str) -> Iterator[tuple[str, int]]:
    """bench/ceiling.py served by uvicorn: its URL and process id."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "bench.ceiling:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env={**os.environ, "LEDGER_BENCH_DSN": dsn},
    )
    url = f"http://127.0.0.1:{port}/v1/risk/query"
    try:
        for _ in range(100):
            try:
                httpx.post(url, json={"subject": subject})
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
