"""How a filing is fingerprinted and stored (ledger/reports/content.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json

from ledger.reports.content import ReportInput, columns_of, filed_values
from ledger.reports.models import Report
from ledger.reports.policy import Basis, Category

FILING = ReportInput(
    case_ref="case-1",
    subject="A" * 43,
    category=Category.EMPTY_BOX,
    basis=Basis.PLATFORM_REVIEW,
    amount_minor=12900,
    currency="CNY",
    occurred_at=dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    confirmed_at=dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
    evidence_sha256=("b" * 64, "a" * 64),
    subject_notified_at=dt.datetime(2026, 11, 3, tzinfo=dt.UTC),
)


def test_the_fingerprint_is_the_one_stored_reports_carry() -> None:
    # The formula every stored report's fingerprint was made with: written out here, so
    # that a change to the generic one cannot silently turn re-sent reports into 409s.
    content = {
        "case_ref": "case-1",
        "subject": "A" * 43,
        "category": "empty_box",
        "basis": "platform_review",
        "amount_minor": 12900,
        "currency": "CNY",
        "occurred_at": "2026-11-01T00:00:00+00:00",
        "confirmed_at": "2026-11-02T00:00:00+00:00",
        "evidence_sha256": ["a" * 64, "b" * 64],
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    assert FILING.fingerprint() == hashlib.sha256(canonical.encode()).hexdigest()


def test_the_notice_time_is_not_part_of_the_case() -> None:
    later = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    assert dataclasses.replace(FILING, subject_notified_at=later).fingerprint() == (
        FILING.fingerprint()
    )
    assert dataclasses.replace(FILING, amount_minor=1).fingerprint() != FILING.fingerprint()


def test_stored_columns_read_back_as_the_filing() -> None:
    report = Report(**columns_of(FILING))
    assert ReportInput(**filed_values(report)) == FILING
    assert report.notified_at == FILING.subject_notified_at
