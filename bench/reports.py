"""Report ingestion against a real `ledger serve` on PostgreSQL, in one run:

1. reports ingested per second through POST /v1/reports:batch, batches of 1,000;
2. single POST /v1/reports submissions per second at 16 concurrent connections (wrk),
   each request a new case, against the bare /healthz endpoint in the same run.

  .venv/bin/python -m bench.reports --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import running_server, scratch_postgres, wrk

EVIDENCE = hashlib.sha256(b"evidence").hexdigest()


def pseudonym() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()


def report(n: int, subjects: list[str], run: str) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {
        "case_ref": f"{run}-{n}",
        "subject": subjects[n % len(subjects)],
        "category": "forged_evidence",
        "basis": "platform_review",
        "amount_minor": 100 + n % 10_000,
        "currency": "CNY",
        "occurred_at": (now - dt.timedelta(days=10)).isoformat(),
        "confirmed_at": (now - dt.timedelta(days=2)).isoformat(),
        "subject_notified_at": (now - dt.timedelta(days=1)).isoformat(),
        "evidence_sha256": [EVIDENCE],
    }


LUA = """
local subjects = {%s}
local counter = 0
local thread_id = 0
setup = function(thread) thread:set("tid", thread_id); thread_id = thread_id + 1 end
request = function()
  counter = counter + 1
  local subject = subjects[(counter %% #subjects) + 1]
  local body = '{"case_ref":"single-' .. tid .. '-' .. counter .. '","subject":"' .. subject ..
    '","category":"empty_box","basis":"platform_review","amount_minor":1999,"currency":"CNY",' ..
    '"occurred_at":"%s","confirmed_at":"%s","subject_notified_at":"%s",' ..
    '"evidence_sha256":["%s"]}'
  return wrk.format("POST", "/v1/reports", {["Content-Type"]="application/json",
    ["Authorization"]="Bearer %s"}, body)
end
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", required=True, metavar="URL")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    subjects = [pseudonym() for _ in range(2000)]

    with (
        scratch_postgres(args.postgres) as url,
        running_server({"LEDGER_DATABASE_URL": url}) as server,
    ):
        member = server.ledger("members", "create", "--name", "bench")
        assert isinstance(member, dict)
        token = server.token(member["id"], "reports:write")
        headers = {"Authorization": f"Bearer {token}"}

        async def batches() -> tuple[int, float, list[float]]:
            async with httpx.AsyncClient(
                base_url=server.base, headers=headers, timeout=120
            ) as http:
                bodies = [
                    {"reports": [report(b * 1000 + i, subjects, "batch") for i in range(1000)]}
                    for b in range(args.batches)
                ]
                timings: list[float] = []
                started = time.perf_counter()
                accepted = 0
                for body in bodies:
                    t0 = time.perf_counter()
                    r = await http.post("/v1/reports:batch", json=body)
                    assert r.status_code == 200, r.text
                    accepted += r.json()["accepted"]
                    timings.append(time.perf_counter() - t0)
                return accepted, time.perf_counter() - started, timings

        accepted, elapsed, timings = asyncio.run(batches())
        now = dt.datetime.now(dt.UTC)
        times = [(now - dt.timedelta(days=d)).isoformat() for d in (10, 2, 1)]
        script = LUA % (",".join(f'"{s}"' for s in subjects[:200]), *times, EVIDENCE, token)
        with tempfile.TemporaryDirectory() as tmp:
            lua = Path(tmp) / "post.lua"
            lua.write_text(script)
            bare = wrk(f"{server.base}/healthz", connections=16, seconds=args.seconds)
            single = wrk(
                f"{server.base}/v1/reports", connections=16, seconds=args.seconds, script=str(lua)
            )
        rss, peak = server.rss_mib()

    print(f"\n## Batch ingestion ({args.batches} batches of 1,000, one at a time)\n")
    median = sorted(timings)[len(timings) // 2]
    print(
        f"**{accepted / elapsed:,.0f} reports/s**; a batch of 1,000 took "
        f"{min(timings):.2f}-{max(timings):.2f} s (median {median:.2f} s)"
    )
    print(f"\n## Single submissions (wrk, 16 connections, {args.seconds} s, one worker)\n")
    print("| endpoint | req/s | p50 ms | p99 ms | non-2xx |")
    print("|---|---:|---:|---:|---:|")
    print(bare.row("GET /healthz (bare)"))
    print(single.row("POST /v1/reports (a new case each)"))
    print(f"\nserver memory: {rss:.0f} MiB resident, {peak:.0f} MiB peak")


if __name__ == "__main__":
    main()
