"""``POST /v1/evidence:check`` end to end, on PostgreSQL, with many stored fingerprints.

Seeds a scratch database (COPY) with forged-evidence reports of one platform, each with
photo fingerprints under the server's own key, starts the real ``ledger serve``, and
restarts it (so it loads its index from the database, as a server does at start-up),
and has another platform check photos one request after another: near copies of stored
photos (0-31 bits flipped) or unrelated ones. Prints p50 / p99 per checked photo, how
long the restarted server took to be ready, its memory, and checks that every near
copy was found.

    .venv/bin/python -m bench.evidence_http \\
        --postgres postgresql://postgres@127.0.0.1:5432/postgres [--photos 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import statistics
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import numpy as np
from sqlalchemy.engine import make_url

from bench.common import running_server, scratch_postgres
from ledger.evidence.keys import KEY_DIR, load_key
from ledger.reports.policy import add_years
from ledger.types import uuid7

PHOTOS_PER_REPORT = 4


def _near(rng: np.random.Generator, raw: bytes, bits: int) -> bytes:
    flat = np.unpackbits(np.frombuffer(raw, dtype=np.uint8)).copy()
    flat[rng.choice(256, size=bits, replace=False)] ^= 1
    return np.packbits(flat).tobytes()


async def _seed(dsn: str, member_id: uuid.UUID, stored: np.ndarray, key_dir: Path) -> None:
    """Reports and their photos, the photos keyed as the server keys them."""
    key = load_key(key_dir)
    keyed = key.transform_many(stored)
    now = dt.datetime.now(dt.UTC)
    confirmed = now - dt.timedelta(days=30)
    evidence = f'["{hashlib.sha256(b"e").hexdigest()}"]'
    conn = await asyncpg.connect(dsn)
    try:
        step = 100_000
        for start in range(0, len(keyed), step * PHOTOS_PER_REPORT):
            chunk = keyed[start : start + step * PHOTOS_PER_REPORT]
            reports, photos = [], []
            for n in range(0, len(chunk), PHOTOS_PER_REPORT):
                report_id = uuid7()
                seq = start + n
                subject = hashlib.sha256(seq.to_bytes(8)).digest()
                reports.append(
                    (
                        report_id, member_id, f"seed-{seq}",
                        np.frombuffer(subject, np.uint8).tobytes().hex()[:43],
                        "forged_evidence", "platform_review", 1000, "CNY", evidence, None,
                        confirmed - dt.timedelta(days=3), confirmed, confirmed, confirmed,
                        add_years(confirmed, 5), "active", confirmed, None,
                    )
                )  # fmt: skip
                photos += [
                    (report_id, member_id, bytes(row), 100, "[]", confirmed)
                    for row in chunk[n : n + PHOTOS_PER_REPORT]
                ]
            await conn.copy_records_to_table(
                "reports",
                records=reports,
                columns=[
                    "id", "member_id", "case_ref", "subject", "category", "basis",
                    "amount_minor", "currency", "evidence", "fingerprint", "occurred_at",
                    "confirmed_at", "notified_at", "filed_at", "expires_at", "state",
                    "state_changed_at", "audit_event_id",
                ],
            )  # fmt: skip
            await conn.copy_records_to_table(
                "evidence_photos",
                records=photos,
                columns=["report_id", "member_id", "fingerprint", "quality", "provenance",
                         "created_at"],
            )  # fmt: skip
    finally:
        await conn.close()


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return (
        statistics.median(ordered) * 1000,
        ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000,
    )


def _measure(
    http: httpx.Client, stored: np.ndarray, rng: np.random.Generator, queries: int, per: int
) -> tuple[dict[str, list[float]], int, int]:
    """Per-photo seconds for requests of ``per`` photos, near copies and unrelated ones
    in turn; and how many near copies were sent and found."""
    timings: dict[str, list[float]] = {"near copy": [], "unrelated": []}
    sent = found = 0
    for n in range(queries):
        near = n % 2 == 0
        photos = []
        for _ in range(per):
            if near:
                row = stored[int(rng.integers(0, len(stored)))].tobytes()
                raw = _near(rng, row, int(rng.integers(0, 32)))
            else:
                raw = rng.integers(0, 256, 32, dtype=np.uint8).tobytes()
            photos.append({"pdq": raw.hex(), "quality": 100})
        body = {"photos": photos, "purpose": "refund_review", "reference": f"bench-{n}"}
        t = time.perf_counter()
        response = http.post("/v1/evidence:check", json=body)
        elapsed = time.perf_counter() - t
        assert response.status_code == 200, response.text
        timings["near copy" if near else "unrelated"].append(elapsed / per)
        if near:
            results = response.json()["photos"]
            sent += per
            found += sum(r["forged_elsewhere"] is not None for r in results)
    return timings, sent, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", required=True, metavar="URL")
    parser.add_argument("--photos", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(11)
    stored = rng.integers(0, 256, size=(args.photos, 32), dtype=np.uint8)
    rows = []
    with scratch_postgres(args.postgres) as url:
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        env = {"LEDGER_DATABASE_URL": url, "LEDGER_MAINTENANCE_ENABLED": "false"}
        with running_server(env) as server:
            reporter = server.ledger("members", "create", "--name", "reporter")
            checker = server.ledger("members", "create", "--name", "checker")
            assert isinstance(reporter, dict)
            assert isinstance(checker, dict)
            key_dir = Path(server.env["LEDGER_DATA_DIR"]) / "keys" / KEY_DIR
            started = time.perf_counter()
            asyncio.run(_seed(dsn, uuid.UUID(str(reporter["id"])), stored, key_dir))
            seeded = time.perf_counter() - started
            loaded = server.restart()
            rss = server.rss_mib()[0]
            token = server.token(str(checker["id"]), "evidence:check")
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=server.base, headers=headers, timeout=300) as http:
                _measure(http, stored, rng, 20, 1)  # warm-up, not counted
                for per in (1, 20):
                    timings, sent, found = _measure(http, stored, rng, args.queries, per)
                    rows.append((per, timings, sent, found))
    print(f"\n## Evidence check over HTTP ({args.photos:,} stored, seeded in {seeded:.0f} s)\n")
    print("| photos per request | query | p50 ms per photo | p99 ms per photo | found |")
    print("|---:|---|---:|---:|---|")
    for per, timings, sent, found in rows:
        for name, samples in timings.items():
            p50, p99 = _ms(samples)
            shown = f"{found} of {sent}" if name == "near copy" else ""
            print(f"| {per} | {name} | {p50:.2f} | {p99:.2f} | {shown} |")
    print(f"\nrestarted server ready (index loaded from the database) in {loaded:.1f} s")
    print(f"server resident memory once ready: {rss:,.0f} MiB")


if __name__ == "__main__":
    main()
