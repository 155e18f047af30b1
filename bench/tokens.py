"""Token issuance and authenticated requests, against a real `ledger serve`.

Prints, in one run on one server:
  1. access tokens issued per second through POST /oauth/token (argon2id at the
     production parameters), and /healthz latency measured *during* that load, which
     shows whether hashing blocks the event loop;
  2. authenticated GET /v1/me requests per second against the bare /healthz endpoint
     (wrk, 64 connections), and the server's memory.

    .venv/bin/python -m bench.tokens [--seconds 10] [--postgres postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx

from bench.common import Server, running_server, scratch_postgres, wrk


async def _issue_tokens(
    server: Server, client_id: str, secret: str, seconds: float, concurrency: int
) -> tuple[int, list[float]]:
    issued = 0
    probe_ms: list[float] = []
    stop = time.monotonic() + seconds

    async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:

        async def issuer() -> None:
            nonlocal issued
            while time.monotonic() < stop:
                r = await http.post(
                    "/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(client_id, secret),
                )
                assert r.status_code == 200, r.text
                issued += 1

        async def prober() -> None:
            # A cheap request every 20 ms while tokens are being issued.
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                r = await http.get("/healthz")
                assert r.status_code == 200
                probe_ms.append((time.perf_counter() - t0) * 1000)
                await asyncio.sleep(0.02)

        await asyncio.gather(*(issuer() for _ in range(concurrency)), prober())
    return issued, probe_ms


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _latency_row(name: str, values: list[float]) -> str:
    median, p99 = statistics.median(values), _pct(values, 0.99)
    return f"| {name} | {median:.2f} | {p99:.2f} | {max(values):.2f} |"


def run(database_label: str, extra_env: dict[str, str], args: argparse.Namespace) -> None:
    with running_server(extra_env) as server:
        member = server.ledger("members", "create", "--name", "bench")
        assert isinstance(member, dict)
        client_id, secret = server.issue_client(member["id"], "risk:read")

        # Unloaded probe latency first, as the baseline for the loaded one.
        idle: list[float] = []
        with httpx.Client(base_url=server.base) as http:
            for _ in range(200):
                t0 = time.perf_counter()
                http.get("/healthz")
                idle.append((time.perf_counter() - t0) * 1000)

        count, loaded = asyncio.run(
            _issue_tokens(server, client_id, secret, args.seconds, args.token_concurrency)
        )
        token = httpx.post(
            f"{server.base}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
        ).json()["access_token"]
        wrk(f"{server.base}/healthz", seconds=2, connections=args.connections)  # warm-up
        bare = wrk(f"{server.base}/healthz", seconds=args.seconds, connections=args.connections)
        me = wrk(
            f"{server.base}/v1/me",
            seconds=args.seconds,
            connections=args.connections,
            headers={"Authorization": f"Bearer {token}"},
        )
        rss, peak = server.rss_mib()

    print(f"\n# {database_label}\n")
    print(
        f"Token issuance, {args.token_concurrency} concurrent clients, {args.seconds} s, "
        "argon2id t=3 m=64MiB p=4:"
    )
    print(f"**{count / args.seconds:,.1f} tokens/s**\n")
    print("| /healthz latency | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|")
    print(_latency_row("idle", idle))
    print(_latency_row("while tokens are issued", loaded))
    print(f"\nwrk, 2 threads, {args.connections} connections, {args.seconds} s, one worker:\n")
    print("| endpoint | req/s | p50 ms | p99 ms | non-2xx |")
    print("|---|---:|---:|---:|---:|")
    print(bare.row("GET /healthz (bare)"))
    print(me.row("GET /v1/me (token, revocation check, 2 reads)"))
    ratio = me.requests_per_second / bare.requests_per_second
    print(f"\n/v1/me: {ratio:.0%} of the bare endpoint's throughput")
    print(f"server memory: {rss:.0f} MiB resident, {peak:.0f} MiB peak")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--token-concurrency", type=int, default=8)
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also run on PostgreSQL (a scratch database is made through this URL)",
    )
    args = parser.parse_args()
    run("SQLite (the embedded default)", {}, args)
    if args.postgres:
        with scratch_postgres(args.postgres) as url:
            run("PostgreSQL", {"LEDGER_DATABASE_URL": url}, args)


if __name__ == "__main__":
    main()
