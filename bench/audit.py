"""Audit log figures on PostgreSQL, in one run:

1. audited reads per second: a primary-key read followed by its audit event, through
   the group-commit writer, against one commit per event (64 concurrent requests);
2. leaves integrated per second by the sequencer;
3. `ledger audit verify` wall time and peak memory for the whole log (1,000,000
   events by default), run as the real command.

  .venv/bin/python -m bench.audit --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench.common import scratch_postgres
from ledger import db
from ledger.access import keys
from ledger.audit.events import Actor, AuditEvent
from ledger.audit.log import PG_COLUMNS, AuditWriter, record, sink_for
from ledger.audit.service import AuditLog
from ledger.audit.tags import Tag
from ledger.clock import SystemClock
from ledger.config import normalize_database_url
from ledger.runtime import CHECKPOINT_RING

LEDGER = str(Path(sys.executable).parent / "ledger")
CLOCK = SystemClock()
SUBJECT = "A" * 43


def _event(n: int) -> AuditEvent:
    return AuditEvent(
        tag=Tag.AUDIT_PROOF_READ,
        actor=Actor.system(),
        subject=SUBJECT,
        purpose="refund_review",
        reference=f"refund-{n}",
        body={"n": n},
    )


async def _audited_reads(url: str, mode: str, concurrency: int, seconds: float) -> dict[str, float]:
    engine = db.create_engine(url, pool_size=concurrency + 2)
    sessions = db.create_sessionmaker(engine)
    reads = db.create_sessionmaker(engine, read_only=True)
    writer = AuditWriter(sink_for(engine), clock=CLOCK)
    writer.start()
    latencies: list[float] = []
    stop = time.monotonic() + seconds
    counter = 0

    async def one_request() -> None:
        nonlocal counter
        async with reads() as session:  # the read being audited
            await session.execute(sa.text("SELECT 1"))
        counter += 1
        if mode == "group":
            await writer.write(_event(counter))
        else:
            async with sessions() as session, session.begin():
                await record(session, _event(counter), now=CLOCK.now())

    async def worker() -> None:
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            await one_request()
            latencies.append((time.perf_counter() - t0) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await writer.stop()
    await engine.dispose()
    ordered = sorted(latencies)
    return {
        "per_second": len(latencies) / elapsed,
        "p50": statistics.median(ordered),
        "p99": ordered[int(0.99 * (len(ordered) - 1))],
        "per_commit": (writer.events / writer.batches) if writer.batches else 1.0,
    }


async def _bulk_events(url: str, count: int) -> None:
    """COPY ``count`` events in, as a busy ledger would have recorded them."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        now = CLOCK.now()
        step = 100_000
        for start in range(0, count, step):
            rows = [
                (
                    now,
                    "risk:subject:queried",
                    "client",
                    None,
                    "cl_bench",
                    None,
                    SUBJECT,
                    "refund_review",
                    f"refund-{n}",
                    f"req-{n}",
                    "success",
                    f'{{"n":{n}}}',
                )
                for n in range(start, min(count, start + step))
            ]
            await conn.copy_records_to_table(
                "audit_events",
                records=rows,
                columns=list(PG_COLUMNS),
            )
    finally:
        await conn.close()


async def _integrate(url: str, key_dir: Path) -> tuple[int, float]:
    engine = db.create_engine(url, pool_size=2)
    log = AuditLog(
        engine=engine,
        clock=CLOCK,
        keys=keys.KeyRingSource(key_dir / CHECKPOINT_RING),
        origin="refund-ledger/audit",
    )
    t0 = time.perf_counter()
    added = await log.integrate()
    elapsed = time.perf_counter() - t0
    await log.checkpoint()
    await engine.dispose()
    return added, elapsed


def _print_reads(
    concurrency: int, seconds: float, group: dict[str, float], single: dict[str, float]
) -> None:
    print(f"\n## Audited reads ({concurrency} concurrent requests, {seconds:.0f} s each)\n")
    print("| audit write | reads/s | p50 ms | p99 ms | events per commit |")
    print("|---|---:|---:|---:|---:|")
    for name, r in (("group commit (AuditWriter)", group), ("one commit per event", single)):
        figures = f"{r['per_second']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f}"
        print(f"| {name} | {figures} | {r['per_commit']:.1f} |")
    print(f"\ngroup commit: {group['per_second'] / single['per_second']:.1f}x the throughput")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", required=True, metavar="URL")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()

    with scratch_postgres(args.postgres) as plain_url, tempfile.TemporaryDirectory() as tmp:
        url = normalize_database_url(plain_url)
        key_dir = Path(tmp) / "keys"
        keys.ensure_ring(key_dir / CHECKPOINT_RING, now=dt.datetime.now(dt.UTC))

        async def setup() -> None:
            engine = db.create_engine(url, pool_size=1)
            await db.upgrade(engine)
            await engine.dispose()

        asyncio.run(setup())
        group = asyncio.run(_audited_reads(url, "group", args.concurrency, args.seconds))
        single = asyncio.run(_audited_reads(url, "single", args.concurrency, args.seconds))
        _print_reads(args.concurrency, args.seconds, group, single)

        t0 = time.perf_counter()
        asyncio.run(_bulk_events(url, args.events))
        print(
            f"\n## Sequencer and verification ({args.events:,} events added by COPY in "
            f"{time.perf_counter() - t0:.1f} s)\n"
        )
        added, elapsed = asyncio.run(_integrate(url, key_dir))
        print(
            f"leaves integrated: {added:,} in {elapsed:.1f} s = **{added / elapsed:,.0f} leaves/s**"
        )

        env = {
            **os.environ,
            "LEDGER_DATABASE_URL": plain_url,
            "LEDGER_KEY_DIR": str(key_dir),
            "LEDGER_DATA_DIR": tmp,
        }
        t0 = time.perf_counter()
        out = subprocess.run(
            [LEDGER, "audit", "verify"], env=env, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        report = json.loads(out.stdout)
        print(
            f"`ledger audit verify`: ok={report['ok']}, {report['leaves']:,} leaves, "
            f"{report['checkpoints']} checkpoint(s), **{wall:.1f} s** wall "
            f"({report['leaves'] / report['seconds']:,.0f} leaves/s inside), peak {peak:.0f} MiB"
        )


if __name__ == "__main__":
    main()
