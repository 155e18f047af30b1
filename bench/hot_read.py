"""What the protective-marker branch costs the risk query's one statement.

Seeds a scratch PostgreSQL database (`ledger init`, then COPY: subjects, reports, and
markers on a few of them), then times the hot read as it was before markers
(``BEFORE``) and as it is (``ledger.scoring.service._HOT_REPORTS``) through one
asyncpg connection, in interleaved rounds, on the same random subjects: half reported,
half never. Prints µs per statement (p50, p99) for each, and the ratio. The database
work only: the HTTP and audit costs around it are the same either way.

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
    took: dict[str, list[float]] = {"before": [], "now": []}
    try:
        for sql in (BEFORE, _HOT_REPORTS):  # warm both plans
            for s in asked[:200]:
                await conn.fetch(sql, s, now)
        for n in range(rounds):
            order = [("before", BEFORE), ("now", _HOT_REPORTS)]
            if n % 2:
                order.reverse()
            for name, sql in order:
                for s in asked:
                    t0 = time.perf_counter_ns()
                    await conn.fetch(sql, s, now)
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
    b, a = (statistics.median(took[k]) for k in ("before", "now"))
    print(f"\nmedian ratio now/before: {a / b:.2f}")


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
