"""score(reports, as_of, policy) -> Assessment. Pure: no database, no clock, no I/O.

The formula (docs/scoring.md has it with a worked example):

1. Only reports whose status counts (``active``, ``disputed``) weigh anything.
2. A report weighs its category's weight, halved every ``half_life`` of age
   (age = as_of - confirmed_at), so an older report always weighs less.
3. Per member and category only the ``per_category_cap`` heaviest reports count, and
   a member's total is capped at ``member_cap``: volume from one platform saturates.
4. raw = the sum over members; score = round(100 * (1 - exp(-raw / scale))), which
   rises with raw and never passes 100.
5. With fewer than ``corroboration`` distinct members, the score is held below the
   ``high`` band: one platform alone cannot put a buyer in the top bands.

Every step only adds non-negative amounts or takes monotone maxima, so adding a report
never lowers the score.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from ledger.reports.policy import COUNTING, Category, Status


class Band(StrEnum):
    NONE = "none"
    LOW = "low"
    ELEVATED = "elevated"
    HIGH = "high"
    SEVERE = "severe"


class Recommendation(StrEnum):
    """Never a denial: the platform, and a person where it matters, decides."""

    PROCEED = "proceed"
    MANUAL_REVIEW = "manual_review"


REASONS: dict[Category, tuple[str, str]] = {
    Category.FORGED_EVIDENCE: (
        "R01",
        "A platform confirmed a refund claim backed by forged or edited evidence.",
    ),
    Category.EMPTY_BOX: (
        "R02",
        "A platform confirmed a claim that a parcel arrived empty was false.",
    ),
    Category.FALSE_NON_RECEIPT: (
        "R03",
        "A platform confirmed a claim that an order never arrived was false.",
    ),
    Category.WARDROBING: ("R04", "A platform confirmed goods were used and returned as unused."),
    Category.OTHER: ("R05", "A platform confirmed another kind of refund abuse."),
}


@dataclass(frozen=True, slots=True)
class ScoredReport:
    """What scoring needs of a report, and nothing about who the buyer is."""

    member_id: uuid.UUID
    category: Category
    status: Status
    confirmed_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ScoringPolicy:
    version: str = "2026-11-23.1"
    weights: dict[Category, float] = field(
        default_factory=lambda: {
            Category.FORGED_EVIDENCE: 30.0,
            Category.EMPTY_BOX: 30.0,
            Category.FALSE_NON_RECEIPT: 25.0,
            Category.WARDROBING: 15.0,
            Category.OTHER: 10.0,
        }
    )
    half_life: dt.timedelta = dt.timedelta(days=365)
    per_category_cap: int = 3
    member_cap: float = 45.0
    scale: float = 60.0
    corroboration: int = 2
    # Lowest score of each band above NONE.
    thresholds: tuple[int, int, int, int] = (1, 30, 60, 85)

    def band(self, score: int) -> Band:
        low, elevated, high, severe = self.thresholds
        if score >= severe:
            return Band.SEVERE
        if score >= high:
            return Band.HIGH
        if score >= elevated:
            return Band.ELEVATED
        if score >= low:
            return Band.LOW
        return Band.NONE


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    text: str
    contribution: float


@dataclass(frozen=True, slots=True)
class Counts:
    active_reports: int
    distinct_members: int
    last_90_days: int
    last_365_days: int
    open_disputes: int
    last_report_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Assessment:
    score: int
    band: Band
    recommendation: Recommendation
    reasons: tuple[Reason, ...]
    counts: Counts
    policy_version: str


def weight(report: ScoredReport, as_of: dt.datetime, policy: ScoringPolicy) -> float:
    """A counting report's weight at ``as_of``: its category's, halved per half-life."""
    age = max(dt.timedelta(0), as_of - report.confirmed_at)
    return float(policy.weights[report.category] * 0.5 ** (age / policy.half_life))


def score(reports: Iterable[ScoredReport], as_of: dt.datetime, policy: ScoringPolicy) -> Assessment:
    counting = [r for r in reports if r.status in COUNTING]
    # member -> category -> weights (heaviest first, capped)
    by_member: dict[uuid.UUID, dict[Category, list[float]]] = defaultdict(lambda: defaultdict(list))
    for report in counting:
        by_member[report.member_id][report.category].append(weight(report, as_of, policy))

    raw = 0.0
    per_category: dict[Category, float] = defaultdict(float)
    for categories in by_member.values():
        kept = {
            category: sorted(weights, reverse=True)[: policy.per_category_cap]
            for category, weights in categories.items()
        }
        total = sum(sum(w) for w in kept.values())
        factor = min(1.0, policy.member_cap / total) if total > 0 else 0.0
        raw += total * factor
        for category, weights in kept.items():
            per_category[category] += sum(weights) * factor

    value = round(100 * (1 - math.exp(-raw / policy.scale)))
    members = len(by_member)
    if members < policy.corroboration:
        value = min(value, policy.thresholds[2] - 1)
    band = policy.band(value)
    reasons = sorted(
        (
            Reason(code=REASONS[c][0], text=REASONS[c][1], contribution=round(w, 4))
            for c, w in per_category.items()
            if w > 0
        ),
        key=lambda r: (-r.contribution, r.code),
    )[:4]
    return Assessment(
        score=value,
        band=band,
        recommendation=(
            Recommendation.PROCEED
            if band in {Band.NONE, Band.LOW}
            else Recommendation.MANUAL_REVIEW
        ),
        reasons=tuple(reasons) if value > 0 else (),
        counts=Counts(
            active_reports=len(counting),
            distinct_members=members,
            last_90_days=sum(as_of - r.confirmed_at <= dt.timedelta(days=90) for r in counting),
            last_365_days=sum(as_of - r.confirmed_at <= dt.timedelta(days=365) for r in counting),
            open_disputes=sum(r.status is Status.DISPUTED for r in counting),
            last_report_at=max((r.confirmed_at for r in counting), default=None),
        ),
        policy_version=policy.version,
    )
