"""Evidence checks against their brute-force baseline, at 1M and 10M stored fingerprints.

For each size: builds the multi-index (ledger/evidence/index.py) over random keyed
fingerprints plus planted near copies, then times per-photo searches (a near copy of a
stored photo, and an unrelated photo) against a full numpy scan of the same arrays in
the same run, and checks that both give the same answer. The index answers
``--index-queries`` of each kind after 20 uncounted warm-up queries (a p99 needs a few
hundred samples); the first ``--queries`` of them are also scanned and compared.
Also: how fast fingerprints go into the index, the index's memory, and the SDK's time
to fingerprint a 12-megapixel photo.

    .venv/bin/python -m bench.evidence [--sizes 1000000 10000000] [--queries 100] \\
        [--index-queries 2000]
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import time
from typing import Any

import numpy as np
from PIL import Image
from refund_ledger_client.evidence import fingerprint

from ledger.evidence.index import FingerprintIndex, distances

THRESHOLD = 31


def _near(rng: np.random.Generator, row: np.ndarray[Any, Any], bits: int) -> np.ndarray[Any, Any]:
    flat = np.unpackbits(row)
    flat[rng.choice(256, size=bits, replace=False)] ^= 1
    return np.packbits(flat)


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_size(
    size: int, queries: int, index_queries: int, rng: np.random.Generator
) -> dict[str, Any]:
    fps = rng.integers(0, 256, size=(size, 32), dtype=np.uint8)
    ids = np.arange(1, size + 1, dtype=np.int64)
    before = _rss_mb()
    index = FingerprintIndex()
    started = time.perf_counter()
    index.add(ids, fps)
    index.merge()
    built = time.perf_counter() - started
    words = np.ascontiguousarray(fps).view(np.uint64).reshape(-1, 4)
    many = max(queries, index_queries)
    picks = rng.integers(0, size, size=many)
    near_queries = [_near(rng, fps[i], int(rng.integers(0, THRESHOLD + 1))) for i in picks]
    far_queries = list(rng.integers(0, 256, size=(many, 32), dtype=np.uint8))
    for query in far_queries[:20]:  # warm-up: first touches, cached masks
        index.search(query.tobytes(), THRESHOLD)
    results: dict[str, Any] = {
        "size": size,
        "build_s": built,
        "ingest_per_s": size / built,
        "index_mb": _rss_mb() - before,
    }
    for name, batch in (("near copy", near_queries), ("unrelated", far_queries)):
        # The index's queries one after another, as a server answering checks runs
        # them; then the scans (each reads all 32 bytes of every row, and would evict
        # the index's arrays from the caches between two queries if interleaved).
        mih: list[float] = []
        found = []
        for query in batch:
            t = time.perf_counter()
            found.append(index.search(query.tobytes(), THRESHOLD))
            mih.append(time.perf_counter() - t)
        scan: list[float] = []
        for query, hits in zip(batch[:queries], found, strict=False):
            t = time.perf_counter()
            d = distances(words, query)
            expected = sorted((int(ids[i]), int(d[i])) for i in np.flatnonzero(d <= THRESHOLD))
            scan.append(time.perf_counter() - t)
            assert sorted((h.id, h.distance) for h in hits) == expected, "index and scan differ"
        results[name] = {"index": _ms(mih), "scan": _ms(scan)}
    return results


def sdk_fingerprint_seconds(repeats: int = 3) -> float:
    """The SDK's time to fingerprint a 12-megapixel JPEG (4000 x 3000)."""
    base = Image.effect_noise((400, 300), 60).convert("RGB").resize((4000, 3000))
    out = io.BytesIO()
    base.save(out, "JPEG", quality=90)
    photo = out.getvalue()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fingerprint(photo)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--queries", type=int, default=100, help="also scanned")
    parser.add_argument("--index-queries", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(42)
    print("| stored | query | index p50 / p99 ms | numpy scan p50 / p99 ms | same answers |")
    print("|---:|---|---:|---:|---|")
    summaries = []
    for size in args.sizes:
        r = run_size(size, args.queries, args.index_queries, rng)
        summaries.append(r)
        for name in ("near copy", "unrelated"):
            (ip50, ip99), (sp50, sp99) = r[name]["index"], r[name]["scan"]
            print(
                f"| {size:,} | {name} | {ip50:.2f} / {ip99:.2f} | {sp50:.1f} / {sp99:.1f} | yes |"
            )
    print()
    for r in summaries:
        print(
            f"{r['size']:,} fingerprints: index built in {r['build_s']:.1f} s "
            f"({r['ingest_per_s']:,.0f} a second), about {r['index_mb']:,.0f} MB more memory"
        )
    print(f"SDK: fingerprinting a 12-megapixel JPEG takes {sdk_fingerprint_seconds():.2f} s")


if __name__ == "__main__":
    main()
