"""The risk query at a blocklist's speed: the ledger against two ceilings and a real peer.

One command, on one PostgreSQL, everything on loopback:

1. Seeds a database (kept between runs with --keep-database) with ``--subjects``
   reported buyers, each with 1 to 10 reports (about 3.25 on average), generated in SQL.
2. Starts the real `ledger serve --workers N` with the sequencer in its own process
   (as deployed for load), and, for each measurement, bench/ceiling.py's two ceilings
   with the same N processes: ``bare`` (the read alone) and ``audited`` (a cached token
   check, the read, and a group-committed audit row before each answer).
3. Starts the peer: CrowdSec's local API from Debian's package (bench/peer_crowdsec.py)
   with 100,000 decisions seeded through its API.
4. Drives each with wrk (2 threads, 64 connections) in interleaved rounds (ledger, bare,
   audited, peer, ledger, …) so that drift on this shared machine hits all of them.
   The mix: ``realistic`` asks about buyers of whom 95% were never reported and 5% have
   1-10 reports (the peer: 95% unlisted addresses, 5% listed); ``reported`` asks only
   about reported buyers (the peer: listed addresses only).
5. Then paced runs (each connection pausing an exponential time after each answer, so
   requests arrive as independent refunds do) at a share of the bare ceiling's
   saturated rate, for the ledger and the bare ceiling alike.

Prints each run, medians and the ratios the targets are set in, the CPU per answer
(server and sequencer), and checks that every answer was audited.

    .venv/bin/python -m bench.risk_query --postgres postgresql://postgres@127.0.0.1:5432/postgres \\
        --keep-database ledger_bench_1m [--mix realistic|reported] [--rounds 3]

``--growth 1000000 10000000`` instead compares the ledger with itself on two kept
databases of those sizes (``<keep-database>_<size>``), interleaved, saturated and paced.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from bench import ceiling as ceilings
from bench import peer_crowdsec
from bench.common import LEDGER, Server, WrkResult, free_port, running_server, scratch_postgres, wrk

LUA = """
local subjects = {%s}
request = function()
  local s = subjects[math.random(#subjects)]
  return wrk.format("POST", "/v1/risk/query", {["Content-Type"]="application/json",
    ["Authorization"]="Bearer %s"},
    '{"subject":"' .. s .. '","purpose":"refund_review","reference":"refund-1"}')
end
"""
# Paced runs: wrk calls ``delay()`` before each request of a connection.
PACED = """
delay = function()
  return -math.log(1 - math.random()) * %f
end
"""
POOL = 5000  # subjects (or addresses) a run draws from
REPORTED_SHARE = 0.05  # of the realistic mix
# Reports per reported buyer: 1 + how many of these its bucket (0-99) reaches: 30% have
# one report, 20% two, 14% three … 2% ten; 3.25 on average.
THRESHOLDS = (30, 50, 64, 74, 82, 88, 93, 96, 98)
SEED_CHUNK = 250_000  # subjects per INSERT statement


def subject(i: int) -> str:
    """The pseudonym of seeded buyer ``i`` (alike in the seeding SQL)."""
    digest = hashlib.sha256(f"bench-{i}".encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def reports_of(i: int) -> int:
    bucket = (i * 2654435761) % 100
    return 1 + sum(bucket >= t for t in THRESHOLDS)


_COUNT_SQL = " + ".join(["1", *(f"(((i * 2654435761) % 100) >= {t})::int" for t in THRESHOLDS)])
_SEED = f"""
INSERT INTO reports (id, member_id, case_ref, subject, category, basis, amount_minor, currency,
    evidence, fingerprint, occurred_at, confirmed_at, notified_at, filed_at, expires_at, state,
    state_changed_at, audit_event_id)
SELECT lpad(to_hex(i * 16 + j), 32, '0')::uuid,
       ($1::uuid[])[1 + (i + j) % array_length($1::uuid[], 1)],
       'seed-' || i || '-' || j,
       rtrim(translate(encode(sha256(convert_to('bench-' || i, 'UTF8')), 'base64'), '+/', '-_'),
             '='),
       (ARRAY['forged_evidence', 'empty_box', 'wardrobing', 'false_non_receipt', 'other'])
           [1 + (i + j) % 5],
       'platform_review', 1000 + (i * 7 + j) % 5000, 'CNY', $2, NULL,
       o.at, o.at + interval '3 days', o.at + interval '3 days', o.at + interval '3 days',
       o.at + interval '5 years', 'active', o.at + interval '3 days', NULL
FROM generate_series($3::bigint, $4::bigint - 1) AS i
CROSS JOIN LATERAL generate_series(1, {_COUNT_SQL}) AS j
CROSS JOIN LATERAL (
    SELECT date_trunc('second', now()) - make_interval(days => (30 + (i * 7 + j * 13) % 1470)::int)
    AS at
) AS o
"""  # noqa: S608  (no input: constants only)


async def _seed(dsn: str, subjects: int, member_ids: list[uuid.UUID]) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        evidence = f'["{hashlib.sha256(b"e").hexdigest()}"]'
        t0 = time.monotonic()
        for start in range(0, subjects, SEED_CHUNK):
            end = min(subjects, start + SEED_CHUNK)
            await conn.execute(_SEED, member_ids, evidence, start, end)
            rate = end / (time.monotonic() - t0)
            print(f"seeded {end:,} of {subjects:,} subjects ({rate:,.0f}/s)", file=sys.stderr)
        await conn.execute("ANALYZE reports")
        return int(await conn.fetchval("SELECT count(*) FROM reports"))
    finally:
        await conn.close()


def _fetch(dsn: str, sql: str) -> object:
    async def go() -> object:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(go())


def _count(dsn: str, sql: str) -> int:
    value = _fetch(dsn, sql)
    assert isinstance(value, int)
    return value


def ensure_seeded(dsn: str, subjects: int) -> tuple[int, float | None]:
    """(reports, seconds seeding took, or None if the database was seeded before)."""
    if _fetch(dsn, "SELECT to_regclass('reports')") is not None:
        reports = _count(dsn, "SELECT count(*) FROM reports")
        if reports:
            return reports, None
    env = {"LEDGER_DATABASE_URL": _sqlalchemy_url(dsn), "LEDGER_WORKERS": "1"}
    with running_server(env) as server:  # migrates, and makes the members
        made = [server.ledger("members", "create", "--name", f"platform-{n}") for n in range(8)]
    member_ids = [uuid.UUID(m["id"]) for m in made if isinstance(m, dict)]
    t0 = time.monotonic()
    reports = asyncio.run(_seed(dsn, subjects, member_ids))
    return reports, time.monotonic() - t0


def _sqlalchemy_url(dsn: str) -> str:
    return make_url(dsn).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def pool_of(mix: str, subjects: int, rng: random.Random) -> list[str]:
    """The subjects a run asks about."""
    reported = POOL if mix == "reported" else round(POOL * REPORTED_SHARE)
    chosen = [subject(i) for i in rng.sample(range(subjects), reported)]
    # Never reported: buyers past the seeded ones.
    chosen += [subject(subjects + i) for i in rng.sample(range(10**9), POOL - reported)]
    rng.shuffle(chosen)
    return chosen


def _cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and its children (uvicorn's workers, when there are several)."""
    total = 0.0
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for child in children.read_text().split() if children.exists() else []:
        total += _cpu_seconds(int(child))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return total + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _database_cpu_seconds() -> float:
    """CPU time of every PostgreSQL process on this machine (the server and its
    backends; the benchmark is the only client of note)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "postgres":
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@dataclass
class Run:
    result: WrkResult
    cpu_us: float  # per answer, of the target's processes
    audited: int | None = None  # risk-query events written meanwhile (the ledger)
    database_us: float = 0.0  # per answer, of PostgreSQL (0 for the peer: SQLite in-process)


def _measure(  # noqa: PLR0917
    url: str,
    pids: list[int],
    lua: str,
    seconds: int,
    connections: int,
    audited: Callable[[], int] | None = None,
    *,
    warm: bool = True,
) -> Run:
    """wrk's figures, CPU per answer of ``pids``, and the events ``audited`` counted."""
    if warm:
        wrk(url, connections=connections, seconds=3, script=lua)
    events0 = audited() if audited else None
    cpu0, db0 = sum(_cpu_seconds(pid) for pid in pids), _database_cpu_seconds()
    result = wrk(url, connections=connections, seconds=seconds, script=lua)
    cpu = sum(_cpu_seconds(pid) for pid in pids) - cpu0
    database = _database_cpu_seconds() - db0
    events = audited() - events0 if audited and events0 is not None else None
    answers = max(1, result.requests)
    return Run(result, cpu / answers * 1e6, events, database / answers * 1e6)


_QUERIED = "SELECT count(*) FROM audit_events WHERE tag = 'risk:subject:queried'"
_WAITING = (
    "SELECT count(*) FROM audit_events e "
    "WHERE NOT EXISTS (SELECT 1 FROM audit_leaves l WHERE l.event_id = e.id)"
)


@contextmanager
def _sequencer(server: Server) -> Iterator[list[int]]:
    """The processes whose CPU counts as the ledger's: the server, and the sequencer."""
    proc = subprocess.Popen(
        [LEDGER, "audit", "sequencer"], env=server.env, stderr=subprocess.DEVNULL
    )
    try:
        yield [server.pid, proc.pid]
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def drained(dsn: str, timeout: float = 120.0) -> tuple[int, float]:
    """Events still waiting for the tree when the load stopped, and seconds to drain."""
    waiting = _count(dsn, _WAITING)
    t0 = time.monotonic()
    while _count(dsn, _WAITING) and time.monotonic() - t0 < timeout:
        time.sleep(0.2)
    return waiting, time.monotonic() - t0


@dataclass
class Ledger:
    server: Server
    pids: list[int]
    dsn: str
    token: str
    size: int  # subjects seeded

    @property
    def url(self) -> str:
        return f"{self.server.base}/v1/risk/query"


@contextmanager
def running_ledger(url: str, workers: int, size: int, settings: dict[str, str]) -> Iterator[Ledger]:
    """`ledger serve` on a seeded database, its sequencer beside it, and a token."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    env = {
        "LEDGER_DATABASE_URL": url,
        "LEDGER_WORKERS": str(workers),
        "LEDGER_AUDIT_SEQUENCER_ENABLED": "false",
        # One token serves the whole run, and a run is longer than the default 10 minutes
        # (a token's lifetime changes nothing of what a request costs).
        "LEDGER_TOKEN_TTL_SECONDS": "3600",
        **settings,
    }
    with running_server(env) as server, _sequencer(server) as pids:
        member = str(_fetch(dsn, "SELECT id FROM members LIMIT 1"))
        token = server.token(member, "risk:read")
        _wait_for_live_sets(server.base, workers, settings)
        yield Ledger(server, pids, dsn, token, size)


def _wait_for_live_sets(base: str, workers: int, settings: dict[str, str]) -> None:
    """Until every worker has loaded its live subjects (or at once, when they are off)."""
    if settings.get("LEDGER_LIVE_SUBJECTS_ENABLED", "true").lower() in {"false", "0"}:
        return
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        for line in metrics.splitlines():
            if line.startswith("ledger_risk_live_subjects_off ") and float(line.split()[1]) == 0:
                return
        time.sleep(1)
    raise RuntimeError(f"the live subjects of {workers} workers did not load")


@contextmanager
def running_ceiling(kind: str, dsn: str, workers: int, secret: str) -> Iterator[tuple[str, int]]:
    """bench/ceiling.py's ``kind`` app under uvicorn with ``workers`` processes."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "--factory", f"bench.ceiling:{kind}",
            "--port", str(port), "--workers", str(workers),
            "--log-level", "warning", "--no-access-log",
        ],
        env={**os.environ, "LEDGER_BENCH_DSN": dsn, "LEDGER_BENCH_SECRET": secret},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1/risk/query"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.post(url, json={"subject": "x"})
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@dataclass
class Figures:
    runs: dict[str, list[Run]] = field(default_factory=dict)
    paced: dict[str, list[Run]] = field(default_factory=dict)

    def add(self, name: str, run: Run, *, paced: bool = False) -> None:
        (self.paced if paced else self.runs).setdefault(name, []).append(run)
        r = run.result
        print(
            f"  {'paced ' if paced else ''}{name}: {r.requests_per_second:,.0f} req/s, "
            f"p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, {run.cpu_us:,.0f} µs CPU/answer, "
            f"{run.database_us:,.0f} µs database CPU/answer"
            + (f", non-2xx {r.non_2xx}" if r.non_2xx else ""),
            file=sys.stderr,
        )


def _median(runs: list[Run], attribute: str) -> float:
    return float(statistics.median(getattr(r.result, attribute) for r in runs))


def _scripts(tmp: Path, name: str, lua: str, pause_ms: float | None = None) -> str:
    path = tmp / f"{name}{'-paced' if pause_ms else ''}.lua"
    path.write_text(lua + (PACED % pause_ms if pause_ms else ""))
    return str(path)


def compare(args: argparse.Namespace) -> None:
    rng = random.Random(19)
    secret = secrets.token_hex(32)
    settings = dict(s.split("=", 1) for s in args.set)
    figures = Figures()
    with scratch_postgres(args.postgres, keep=args.keep_database) as url, ExitStack() as stack:
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        reports, seeded = ensure_seeded(dsn, args.subjects)
        ledger = stack.enter_context(
            running_ledger(_sqlalchemy_url(dsn), args.workers, args.subjects, settings)
        )
        variant = None  # the same ledger with other settings, in the same rounds
        if args.variant:
            changed = settings | dict(s.split("=", 1) for s in args.variant)
            variant = stack.enter_context(
                running_ledger(_sqlalchemy_url(dsn), args.workers, args.subjects, changed)
            )
            _NAMES["variant"] = "the ledger with " + ", ".join(args.variant)
        subjects = pool_of(args.mix, args.subjects, rng)
        peer = None
        if not args.no_peer:
            peer = stack.enter_context(peer_crowdsec.running_peer(args.decisions, rng=rng))
            share = 1.0 if args.mix == "reported" else REPORTED_SHARE
            peer_lua = peer_crowdsec.lua(peer, peer_crowdsec.pool(peer, POOL, share, rng))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        body = ",".join(f'"{s}"' for s in subjects)
        ledger_lua = LUA % (body, ledger.token)
        ceiling_lua = LUA % (body, ceilings.token(secret))
        n, c = args.seconds, args.connections
        for round_ in range(args.rounds):
            print(f"round {round_ + 1} of {args.rounds}", file=sys.stderr)
            figures.add(
                "ledger",
                _measure(
                    ledger.url, ledger.pids, _scripts(tmp, "ledger", ledger_lua), n, c,
                    audited=lambda: _count(dsn, _QUERIED),
                ),
            )  # fmt: skip
            if variant is not None:
                script = _scripts(tmp, "variant", LUA % (body, variant.token))
                figures.add("variant", _measure(variant.url, variant.pids, script, n, c))
            for kind in ("bare", "audited"):
                with running_ceiling(kind, dsn, args.workers, secret) as (ceiling_url, pid):
                    script = _scripts(tmp, kind, ceiling_lua)
                    figures.add(kind, _measure(ceiling_url, [pid], script, n, c))
            if peer is not None:
                script = _scripts(tmp, "peer", peer_lua)
                figures.add("peer", _measure(peer.url, [peer.pid], script, n, c))
        # Paced at a share of the bare ceiling's saturated rate, both alike.
        rate = args.paced * _median(figures.runs["bare"], "requests_per_second")
        pause_ms = c / rate * 1000
        for _ in range(args.paced_rounds):
            script = _scripts(tmp, "ledger", ledger_lua, pause_ms)
            figures.add("ledger", _measure(ledger.url, ledger.pids, script, n, c), paced=True)
            for kind in ("bare", "audited"):
                with running_ceiling(kind, dsn, args.workers, secret) as (ceiling_url, pid):
                    script = _scripts(tmp, kind, ceiling_lua, pause_ms)
                    figures.add(kind, _measure(ceiling_url, [pid], script, n, c), paced=True)
        waiting, drain = drained(dsn)
    _print_compare(args, figures, reports, seeded, rate, waiting, drain, peer)


_NAMES = {
    "ledger": "POST /v1/risk/query: the ledger (token, client state, live set, score, "
    "explanation, audit event committed before the answer)",
    "bare": "bare-read ceiling: Starlette + asyncpg, the read alone",
    "audited": "audited-read ceiling: cached token check, the read, a group-committed audit row",
    "peer": "CrowdSec local API: GET /v1/decisions (SQLite, API key, unaudited)",
}


def _print_compare(  # noqa: PLR0917
    args: argparse.Namespace,
    figures: Figures,
    reports: int,
    seeded: float | None,
    rate: float,
    waiting: int,
    drain: float,
    peer: peer_crowdsec.Peer | None,
) -> None:
    mix = (
        f"{1 - REPORTED_SHARE:.0%} never reported, {REPORTED_SHARE:.0%} with 1-10 reports"
        if args.mix == "realistic"
        else "every subject reported (1-10 reports)"
    )
    print(
        f"\n## Risk query, {args.mix} mix ({mix}); {args.subjects:,} subjects, "
        f"{reports:,} reports" + (f", seeded in {seeded:.0f} s" if seeded else "") + "\n"
    )
    print(
        f"{os.cpu_count()} cores shared by everything; wrk 2 threads, {args.connections} "
        f"connections, {args.seconds} s after a 3 s warm-up; {args.rounds} interleaved rounds; "
        f"{args.workers} processes for the ledger and each ceiling; the ledger's sequencer in "
        "its own process, its CPU counted with the server's"
        + (f"; CrowdSec {peer.version} with {args.decisions:,} decisions" if peer else "")
        + ".\n"
    )
    print(
        "| endpoint | req/s (median) | runs | p50 ms | p99 ms | CPU per answer "
        "| PostgreSQL CPU per answer |"
    )
    print("|---|---:|---|---:|---:|---:|---:|")
    for name, runs in figures.runs.items():
        rates = ", ".join(f"{r.result.requests_per_second:,.0f}" for r in runs)
        print(
            f"| {_NAMES[name]} | {_median(runs, 'requests_per_second'):,.0f} | {rates} | "
            f"{_median(runs, 'p50_ms'):.2f} | {_median(runs, 'p99_ms'):.2f} | "
            f"{statistics.median(r.cpu_us for r in runs):,.0f} µs | "
            f"{statistics.median(r.database_us for r in runs):,.0f} µs |"
        )
    ledger = _median(figures.runs["ledger"], "requests_per_second")
    print()
    for name in ("variant", "bare", "audited", "peer"):
        if name in figures.runs:
            other = _median(figures.runs[name], "requests_per_second")
            print(f"- ledger / {name}: {ledger / other:.2f} (medians)")
    paired = [
        ledger_run.result.requests_per_second / bare_run.result.requests_per_second
        for ledger_run, bare_run in zip(figures.runs["ledger"], figures.runs["bare"], strict=True)
    ]
    print(f"- ledger / bare, round by round: {', '.join(f'{p:.2f}' for p in paired)}")
    runs = figures.runs["ledger"]
    audited = sum(r.audited or 0 for r in runs)
    answered = sum(r.result.requests for r in runs)
    print(
        f"- audited: {audited:,} risk-query events for {answered:,} answers (events also "
        f"count requests in flight when wrk stopped); the sequencer had {waiting:,} events "
        f"waiting at the end and took {drain:.1f} s to drain"
    )
    if figures.paced:
        print(
            f"\nPaced at {args.paced:.0%} of the bare ceiling's saturated rate "
            f"({rate:,.0f} req/s offered), {args.connections} connections:\n"
        )
        print("| endpoint | req/s | p50 ms | p99 ms | CPU per answer | PostgreSQL CPU |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, paced in figures.paced.items():
            for run in paced:
                r = run.result
                print(
                    f"| {name} | {r.requests_per_second:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
                    f"| {run.cpu_us:,.0f} µs | {run.database_us:,.0f} µs |"
                )
        ratios = [
            a.result.p99_ms / b.result.p99_ms
            for a, b in zip(figures.paced["ledger"], figures.paced["bare"], strict=True)
        ]
        print(f"\n- paced p99, ledger / bare: {', '.join(f'{r:.2f}' for r in ratios)}")
        ratios = [
            a.result.p99_ms / b.result.p99_ms
            for a, b in zip(figures.paced["ledger"], figures.paced["audited"], strict=True)
        ]
        print(f"- paced p99, ledger / audited: {', '.join(f'{r:.2f}' for r in ratios)}")


def growth(args: argparse.Namespace) -> None:
    """The ledger against itself on databases of different sizes, interleaved."""
    rng = random.Random(19)
    settings = dict(s.split("=", 1) for s in args.set)
    figures = Figures()
    base = args.keep_database or "ledger_bench"
    with ExitStack() as stack:
        ledgers: list[tuple[Ledger, str]] = []
        dsns = []
        for size in args.growth:  # every database seeded before any ledger starts
            url = stack.enter_context(scratch_postgres(args.postgres, keep=f"{base}_{size}"))
            dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
            reports, seeded = ensure_seeded(dsn, size)
            print(f"{size:,} subjects: {reports:,} reports, seeded in {seeded or 0:.0f} s",
                  file=sys.stderr)  # fmt: skip
            dsns.append((size, dsn))
        for size, dsn in dsns:
            ledger = stack.enter_context(
                running_ledger(_sqlalchemy_url(dsn), args.workers, size, settings)
            )
            ledgers.append((ledger, LUA % (",".join(
                f'"{s}"' for s in pool_of(args.mix, size, rng)), ledger.token)))  # fmt: skip
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        n, c = args.seconds, args.connections
        for _ in range(args.rounds):
            for ledger, lua in ledgers:
                script = _scripts(tmp, f"ledger-{ledger.size}", lua)
                figures.add(f"{ledger.size:,}", _measure(ledger.url, ledger.pids, script, n, c))
        rate = args.paced * min(
            _median(runs, "requests_per_second") for runs in figures.runs.values()
        )
        for _ in range(args.paced_rounds):
            for ledger, lua in ledgers:
                script = _scripts(tmp, f"ledger-{ledger.size}", lua, c / rate * 1000)
                run = _measure(ledger.url, ledger.pids, script, n, c)
                figures.add(f"{ledger.size:,}", run, paced=True)
    print(f"\n## The ledger as it grows ({args.mix} mix, {args.workers} processes)\n")
    print("| subjects | saturated req/s | p99 ms | paced req/s | paced p50 ms | paced p99 ms |")
    print("|---:|---:|---:|---:|---:|---:|")
    for name, runs in figures.runs.items():
        paced = figures.paced.get(name, [])
        print(
            f"| {name} | {_median(runs, 'requests_per_second'):,.0f} | "
            f"{_median(runs, 'p99_ms'):.2f} | "
            + (
                f"{_median(paced, 'requests_per_second'):,.0f} | {_median(paced, 'p50_ms'):.2f} "
                f"| {_median(paced, 'p99_ms'):.2f} |"
                if paced
                else "| | |"
            )
        )
    names = list(figures.runs)
    first, last = names[0], names[-1]
    print(
        f"\n- saturated p99, {last} / {first}: "
        f"{_median(figures.runs[last], 'p99_ms') / _median(figures.runs[first], 'p99_ms'):.2f}"
    )
    if figures.paced:
        ratio = _median(figures.paced[last], "p99_ms") / _median(figures.paced[first], "p99_ms")
        print(f"- paced p99 at {rate:,.0f} req/s offered, {last} / {first}: {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", required=True, metavar="URL")
    parser.add_argument("--subjects", type=int, default=1_000_000, help="reported buyers")
    parser.add_argument(
        "--keep-database",
        metavar="NAME",
        help="seed this database once and keep it for later runs (default: a scratch one)",
    )
    parser.add_argument("--mix", choices=["realistic", "reported"], default="realistic")
    parser.add_argument("--workers", type=int, default=2, help="processes, for every server")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--paced", type=float, default=0.5, help="share of the bare rate")
    parser.add_argument("--paced-rounds", type=int, default=2)
    parser.add_argument("--decisions", type=int, default=100_000, help="the peer's")
    parser.add_argument("--no-peer", action="store_true", help="leave CrowdSec out")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LEDGER_NAME=VALUE",
        help="also run a second ledger with this setting changed, in the same rounds "
        "(e.g. LEDGER_LIVE_SUBJECTS_ENABLED=false)",
    )
    parser.add_argument(
        "--growth",
        type=int,
        nargs="+",
        metavar="SUBJECTS",
        help="compare the ledger with itself at these sizes instead",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="LEDGER_NAME=VALUE",
        help="a setting for the ledger's processes, e.g. LEDGER_LIVE_SUBJECTS_ENABLED=false",
    )
    args = parser.parse_args()
    for setting in args.set:
        if not setting.startswith("LEDGER_") or "=" not in setting:
            parser.error(f"--set takes LEDGER_NAME=VALUE, not {setting!r}")
    if args.growth:
        growth(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
