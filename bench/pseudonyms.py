"""Pseudonym evaluation speed, and the SDK's end-to-end latency.

    .venv/bin/python -m bench.pseudonyms [--seconds 3] [--requests 300]

In one run:
1. the raw rate of libsodium's ristretto255 scalar multiplication (through rbcl), the
   baseline BlindEvaluate cannot beat;
2. BlindEvaluate (VOPRF: evaluation and the batch's DLEQ proof) for one element, and
   for batches of 100, as elements per second;
3. against a real `ledger serve` (SQLite, scratch directory, generous limits), the SDK's
   `pseudonymize` (uncached: blind, HTTP evaluate, verify the proof, finalize) and
   `pseudonymize` + `query_risk`, one after another, p50 and p99 over ``--requests``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import rbcl
from refund_ledger_client import LedgerClient
from refund_ledger_client.voprf import VOPRF, Suite

from bench.common import running_server

SUITE = Suite(VOPRF)


def _rate(work: Callable[[], int], seconds: float) -> float:
    """Units of work per second over about ``seconds``."""
    done = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        done += work()
    return done / elapsed


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    secret, _public = SUITE.derive_key_pair(os.urandom(32), b"bench")
    point = bytes(rbcl.crypto_core_ristretto255_random())

    def raw() -> int:
        rbcl.crypto_scalarmult_ristretto255(secret, point)
        return 1

    one = [SUITE.blind(b"phone:+8613800138000")[1]]
    hundred = [SUITE.blind(f"phone:+86138{n:08d}".encode())[1] for n in range(100)]

    def single() -> int:
        SUITE.blind_evaluate(secret, one)
        return 1

    def batch() -> int:
        SUITE.blind_evaluate(secret, hundred)
        return 100

    raw_rate = _rate(raw, args.seconds)
    single_rate = _rate(single, args.seconds)
    batch_rate = _rate(batch, args.seconds)
    print("## Pseudonym evaluation (ristretto255-SHA512 VOPRF, one core)\n")
    print("| operation | per second | cost in scalar multiplications |")
    print("|---|---:|---:|")
    print(f"| raw scalar multiplication (libsodium via rbcl) | {raw_rate:,.0f} | 1 |")
    print(
        f"| BlindEvaluate, 1 element (evaluation + proof) | {single_rate:,.0f} elements "
        f"| {raw_rate / single_rate:.1f} |"
    )
    print(
        f"| BlindEvaluate, batches of 100 (one proof each) | {batch_rate:,.0f} elements "
        f"| {raw_rate / batch_rate:.1f} |"
    )

    limits = {"LEDGER_PSEUDONYM_RATE_LIMIT": "1000000/minute"}
    with running_server(limits) as server:
        member = server.ledger("members", "create", "--name", "bench")
        assert isinstance(member, dict)
        client_id, client_secret = server.issue_client(
            member["id"], "pseudonyms:evaluate risk:read"
        )
        with LedgerClient(server.base, client_id, client_secret, cache_size=0) as ledger:
            ledger.pseudonymize("phone", "13800000000")  # token, key: fetched once
            pseudonymize, both = [], []
            for n in range(args.requests):
                start = time.perf_counter()
                subject = ledger.pseudonymize("phone", f"138{n:08d}")
                middle = time.perf_counter()
                ledger.query_risk(subject, reference=f"bench-{n}")
                end = time.perf_counter()
                pseudonymize.append((middle - start) * 1000)
                both.append((end - start) * 1000)
    print(f"\n## The SDK against `ledger serve` (SQLite), {args.requests} buyers in turn\n")
    print("| call | p50 ms | p99 ms | mean ms |")
    print("|---|---:|---:|---:|")
    for name, values in (("pseudonymize (uncached)", pseudonymize), ("+ query_risk", both)):
        print(
            f"| {name} | {_percentile(values, 0.5):.2f} | {_percentile(values, 0.99):.2f} "
            f"| {statistics.fmean(values):.2f} |"
        )


if __name__ == "__main__":
    main()
