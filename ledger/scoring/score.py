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
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from ledger.i18n import N_
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


# Codes are stable; the texts are English message ids, shown translated
# (ledger/scoring/explanations.py).
REASONS: dict[Category, tuple[str, str]] = {
    Category.FORGED_EVIDENCE: (
        "R01",
        N_("A platform confirmed a refund claim backed by forged or edited evidence."),
    ),
    Category.EMPTY_BOX: (
        "R02",
        N_("A platform confirmed that a claim that a parcel arrived empty was false."),
    ),
    Category.FALSE_NON_RECEIPT: (
        "R03",
        N_("A platform confirmed that a claim that an order never arrived was false."),
    ),
    Category.WARDROBING: (
        "R04",
        N_("A platform confirmed that goods were used and then returned as unused."),
    ),
    Category.OTHER: ("R05", N_("A platform confirmed another kind of refund abuse.")),
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
    # Evidence checks (docs/evidence.md): a near copy is within this many bits of 256
    # (ThreatExchange's recommendation), of photos of at least this PDQ quality; other
    # members' listing photos are matched only when the switch is on.
    match_distance: int = 31
    match_quality: int = 50
    match_other_listings: bool = False

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


_MICROSECOND = dt.timedelta(microseconds=1)
_DAYS_90 = dt.timedelta(days=90)
_DAYS_365 = dt.timedelta(days=365)


def score(reports: Iterable[ScoredReport], as_of: dt.datetime, policy: ScoringPolicy) -> Assessment:
    # This runs on every risk query: it is written as plain loops over the reports, with
    # ages in whole microseconds as ``weight`` computes them (the same floats exactly).
    counting = [r for r in reports if r.status in COUNTING]
    half_life = policy.half_life // _MICROSECOND
    weights = policy.weights
    # member -> category -> weights
    by_member: dict[uuid.UUID, dict[Category, list[float]]] = {}
    last_90 = last_365 = disputed = 0
    last_report_at: dt.datetime | None = None
    for report in counting:
        age = as_of - report.confirmed_at
        micros = age // _MICROSECOND
        w = float(weights[report.category] * 0.5 ** ((micros if micros > 0 else 0) / half_life))
        by_member.setdefault(report.member_id, {}).setdefault(report.category, []).append(w)
        last_90 += age <= _DAYS_90
        last_365 += age <= _DAYS_365
        disputed += report.status is Status.DISPUTED
        if last_report_at is None or report.confirmed_at > last_report_at:
            last_report_at = report.confirmed_at

    raw = 0.0
    per_category: dict[Category, float] = {}
    cap = policy.per_category_cap
    for categories in by_member.values():
        # The heaviest ``cap`` reports per category, then the member's total capped.
        kept = {c: sorted(ws, reverse=True)[:cap] for c, ws in categories.items()}
        total = sum(sum(ws) for ws in kept.values())
        factor = min(1.0, policy.member_cap / total) if total > 0 else 0.0
        raw += total * factor
        for category, ws in kept.items():
            per_category[category] = per_category.get(category, 0.0) + sum(ws) * factor

    value = round(100 * (1 - math.exp(-raw / policy.scale)))
    members = len(by_member)
    if members < policy.corroboration:
        value = min(value, policy.thresholds[2] - 1)
    band = policy.band(value)
    reasons: tuple[Reason, ...] = ()
    if value > 0:
        ranked = sorted(
            (
                Reason(code=REASONS[c][0], text=REASONS[c][1], contribution=round(w, 4))
                for c, w in per_category.items()
                if w > 0
            ),
            key=lambda r: (-r.contribution, r.code),
        )
        reasons = tuple(ranked[:4])
    return Assessment(
        score=value,
        band=band,
        recommendation=(
            Recommendation.PROCEED
            if band is Band.NONE or band is Band.LOW
            else Recommendation.MANUAL_REVIEW
        ),
        reasons=reasons,
        counts=Counts(
            active_reports=len(counting),
            distinct_members=members,
            last_90_days=last_90,
            last_365_days=last_365,
            open_disputes=disputed,
            last_report_at=last_report_at,
        ),
        policy_version=policy.version,
    )
