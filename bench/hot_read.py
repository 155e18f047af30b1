"""What the protective-marker branch costs the risk query's one statement.

Seeds a scratch PostgreSQL database (`ledger init`, then COPY: subjects, reports, and
markers on a few of them), then times the hot read as it was before markers
(``BEFORE``), with the marker branch as first measured (``MARKERS``, "now" in the
records of 2026-12-02), and as it is since held rows (``_HOT_REPORTS``, "held": no time
in it) through one asyncpg connection, in interleaved rounds, on the same random
subjects: half reported, half never. Prints µs per statement (p50, p99) for each, and
the ratios. The database work only: the HTTP and audit costs around it are the same.

    .venv/bin/python -m bench.hot_read --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import subprocess
import tempfile
import time
import uuid

import asyncpg
from sqlalchemy.engine import make_url

from bench.common import LEDGER, scratch_postgres
from bench.risk_query import _seed, subject
from ledger.scoring.service import _HOT_REPORTS

YEARS_2 = dt.timedelta(days=730)
# The statement before protective markers (before commit 82250f3).
BEFORE = """
SELECT r.member_id, r.category, r.state, r.filed_at, r.notified_at, r.expires_at,
       r.confirmed_at,
       ARRAY(SELECT d.deadline FROM dispute_items i JOIN disputes d ON d.id = i.dispute_id
             WHERE i.report_id = r.id AND i.resolution = 'open') AS deadlines
FROM reports r
WHERE r.subject = $1 AND r.state <> 'purged' AND r.expires_at > $2
"""
# The statement with the marker branch as it was measured (82250f3 to 2026-12-06): what
# is in force at the query's moment, chosen in SQL.
MARKERS = """
SELECT r.member_id, r.category, r.state, r.filed_at, r.notified_at, r.expires_at,
       r.confirmed_at,
       ARRAY(SELECT d.deadline FROM dispute_items i JOIN disputes d ON d.id = i.dispute_id
             WHERE i.report_id = r.id AND i.resolution = 'open') AS deadlines,
       NULL::varchar AS marker
FROM reports r
WHERE r.subject = $1 AND r.state <> 'purged' AND r.expires_at > $2
UNION ALL
(SELECT NULL, NULL, NULL, m.placed_at, NULL, m.expires_at, NULL, NULL, m.kind
 FROM protective_markers m
 WHERE m.subject = $1 AND m.removed_at IS NULL AND m.expires_at > $2
 ORDER BY m.placed_at DESC LIMIT 1)
"""
# Since then the statement reads everything that may be in force at some moment (no
# time in it: the held rows are chosen from at each query), ``_HOT_REPORTS``.
STATEMENTS = {"before": (BEFORE, True), "now": (MARKERS, True), "held": (_HOT_REPORTS, False)}


async def _markers(dsn: str, subjects: list[str], member_id: uuid.UUID) -> None:
    conn = await asyncpg.connect(dsn)
    now = dt.datetime.now(dt.UTC)
    try:
        rows = [
            (
                uuid.uuid4(),
                s,
                "identity_misused",
                member_id,
                "bench",
                now,
                now + dt.timedelta(days=730),
            )
            for s in subjects
        ]
        await conn.copy_records_to_table(
            "protective_markers",
            records=rows,
            columns=["id", "subject", "kind", "placed_by", "reference", "placed_at", "expires_at"],
        )
        await conn.execute("ANALYZE protective_markers")
    finally:
        await conn.close()


async def _time(dsn: str, asked: list[str], rounds: int) -> dict[str, list[float]]:
    conn = await asyncpg.connect(dsn)
    now = dt.datetime.now(dt.UTC)
    took: dict[str, list[float]] = {name: [] for name in STATEMENTS}
    try:
        for sql, timed in STATEMENTS.values():  # warm every plan
            for s in asked[:200]:
                await conn.fetch(sql, *((s, now) if timed else (s,)))
        for n in range(rounds):
            order = list(STATEMENTS.items())
            if n % 2:
                order.reverse()
            for name, (sql, timed) in order:
                for s in asked:
                    t0 = time.perf_counter_ns()
                    await conn.fetch(sql, *((s, now) if timed else (s,)))
                    took[name].append((time.perf_counter_ns() - t0) / 1000)
    finally:
        await conn.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", required=True, metavar="URL")
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--markers", type=int, default=1_000)
    parser.add_argument("--queries", type=int, default=2_000, help="per round and statement")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    rng = random.Random(11)
    subjects = [subject(i) for i in range(args.subjects)]
    with scratch_postgres(args.postgres) as url:
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        data = tempfile.mkdtemp(prefix="ledger-bench-")
        env = {"LEDGER_DATABASE_URL": url, "LEDGER_DATA_DIR": data}
        subprocess.run(
            [LEDGER, "init", "--allow-superuser"],
            env=env | {"PATH": os.environ["PATH"]},
            capture_output=True,
            check=True,
        )
        member = uuid.uuid4()
        asyncio.run(_member(dsn, member))
        args.reports = asyncio.run(_seed(dsn, args.subjects, [member]))
        asyncio.run(_markers(dsn, subjects[: args.markers], member))
        never = [subject(args.subjects + i) for i in range(args.queries // 2)]
        asked = rng.sample(subjects, args.queries - len(never)) + never
        rng.shuffle(asked)
        took = asyncio.run(_time(dsn, asked, args.rounds))
    print(
        f"\n## The hot read with and without the marker branch ({args.subjects:,} subjects, "
        f"{args.reports:,} reports, {args.markers:,} markers; half the queries never reported)\n"
    )
    print("| statement | p50 µs | p99 µs |")
    print("|---|---:|---:|")
    for name, values in took.items():
        q = statistics.quantiles(values, n=100)
        print(f"| {name} | {q[49]:.0f} | {q[98]:.0f} |")
    b, a, h = (statistics.median(took[k]) for k in ("before", "now", "held"))
    print(f"\nmedian ratio now/before: {a / b:.2f}; held/now: {h / a:.2f}")


async def _member(dsn: str, member_id: uuid.UUID) -> None:
    conn = await asyncpg.connect(dsn)
    now = dt.datetime.now(dt.UTC)
    try:
        await conn.execute(
            "INSERT INTO members (id, name, display_name, status, created_at, status_changed_at) "
            "VALUES ($1, 'bench', 'bench', 'active', $2, $2)",
            member_id,
            now,
        )
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
