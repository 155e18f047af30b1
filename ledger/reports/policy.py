"""The rules' numbers, and the pure functions that apply them (no database).

Regulation on the Administration of Credit Investigation Industry (PRC, 2013):
art. 15 notice before reporting, art. 16 five-year retention and the subject's
statement, art. 17 self-access, art. 25 disputes answered within 20 days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

MAX_RETENTION_YEARS = 5


class Category(StrEnum):
    FORGED_EVIDENCE = "forged_evidence"
    EMPTY_BOX = "empty_box"
    WARDROBING = "wardrobing"
    FALSE_NON_RECEIPT = "false_non_receipt"
    OTHER = "other"


class Basis(StrEnum):
    PLATFORM_REVIEW = "platform_review"
    MERCHANT_EVIDENCE = "merchant_evidence"
    ARBITRATION = "arbitration"
    COURT_RULING = "court_ruling"
    POLICE_REPORT = "police_report"


class State(StrEnum):
    """What is stored; time-dependent statuses are derived by ``status()``."""

    ACTIVE = "active"
    WITHDRAWN = "withdrawn"
    SUPPRESSED = "suppressed"
    PURGED = "purged"


class Status(StrEnum):
    """What a report is at a given moment."""

    PENDING_NOTICE = "pending_notice"  # filed, subject not yet notified: counts for nothing
    SUSPENDED = "suspended"  # no notice 30 days after filing: counts for nothing
    ACTIVE = "active"  # counts
    DISPUTED = "disputed"  # counts, with an open dispute shown beside it
    WITHDRAWN = "withdrawn"  # by its member: counts for nothing
    SUPPRESSED = "suppressed"  # a dispute went unanswered past its deadline
    EXPIRED = "expired"  # past expires_at: returned to no one


COUNTING = frozenset({Status.ACTIVE, Status.DISPUTED})


def add_years(moment: dt.datetime, years: int) -> dt.datetime:
    """The same calendar moment ``years`` later (29 February becomes 28 February)."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)


@dataclass(frozen=True, slots=True)
class ReportPolicy:
    notice_grace: dt.timedelta = dt.timedelta(days=30)
    dispute_window: dt.timedelta = dt.timedelta(days=20)
    # A correction reaches the members that queried the subject within this window
    # (FCRA §1681i(d), GDPR art. 19); a reporting member is reminded of a dispute this
    # long before its deadline.
    correction_window: dt.timedelta = dt.timedelta(days=30)
    dispute_reminder: dt.timedelta = dt.timedelta(days=3)
    # A protective marker (identity_misused) lasts this long unless renewed.
    marker_validity: dt.timedelta = dt.timedelta(days=730)
    # Per category, shorter than five years if the operator decides; never longer.
    retention_years: dict[Category, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for category, years in self.retention_years.items():
            if not 1 <= years <= MAX_RETENTION_YEARS:
                raise ValueError(f"retention for {category} is 1 to {MAX_RETENTION_YEARS} years")

    def expires_at(self, category: Category, occurred_at: dt.datetime) -> dt.datetime:
        years = self.retention_years.get(category, MAX_RETENTION_YEARS)
        return add_years(occurred_at, years)


def status(
    *,
    state: State,
    filed_at: dt.datetime,
    notified_at: dt.datetime | None,
    expires_at: dt.datetime,
    dispute_deadlines: list[dt.datetime],
    now: dt.datetime,
    policy: ReportPolicy,
) -> Status:
    """A report's status at ``now``. ``dispute_deadlines`` are those of its unanswered
    dispute items."""
    if state is State.PURGED or now >= expires_at:
        return Status.EXPIRED
    if state is State.WITHDRAWN:
        return Status.WITHDRAWN
    if state is State.SUPPRESSED or any(now >= d for d in dispute_deadlines):
        return Status.SUPPRESSED
    if notified_at is None:
        suspended = now >= filed_at + policy.notice_grace
        return Status.SUSPENDED if suspended else Status.PENDING_NOTICE
    if dispute_deadlines:
        return Status.DISPUTED
    return Status.ACTIVE
