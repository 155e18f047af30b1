"""What the buyer's texts in the reader's language cost a risk answer.

Times, in process, the explanation and reason texts of one answer in each locale
(ledger/scoring/explanations.py, through the gettext catalogues) and the choice of the
locale from a browser's Accept-Language (ledger/i18n); the risk query itself costs
about 165-190 µs of CPU (docs/benchmarks.md), so this is its share.

    .venv/bin/python -m bench.texts [--repeats 20000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import timeit
import uuid

from ledger import i18n
from ledger.reports.policy import Category, Status
from ledger.scoring import explanations
from ledger.scoring.score import ScoredReport, ScoringPolicy, score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20_000)
    n = parser.parse_args().repeats
    now = dt.datetime.now(dt.UTC)
    reports = [
        ScoredReport(uuid.uuid4(), c, Status.ACTIVE, now - dt.timedelta(days=3))
        for c in (Category.FORGED_EVIDENCE, Category.EMPTY_BOX)
    ]
    answer = score(reports, as_of=now, policy=ScoringPolicy())
    print("| what | µs per answer |\n|---|---:|")
    for locale in i18n.LOCALES:

        def texts(loc: str = locale) -> None:
            explanations.explain(answer, loc)
            explanations.reasons(answer, loc)

        seconds = min(timeit.repeat(texts, number=n, repeat=3))
        print(f"| explanation and reasons, {locale} | {seconds / n * 1e6:.1f} |")
    header = "zh-CN,zh;q=0.9,en;q=0.8"
    seconds = min(timeit.repeat(lambda: i18n.choose(None, header, "zh-CN"), number=n, repeat=3))
    print(f"| the locale from Accept-Language (cached) | {seconds / n * 1e6:.2f} |")


if __name__ == "__main__":
    main()
