"""What a member files, how it is checked, fingerprinted, and stored.

No free text: every field is a code, a number, a time or a digest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any

from ledger.errors import InvalidInput
from ledger.evidence.photos import PhotoInput, check_photos
from ledger.reports.models import Report
from ledger.reports.policy import Basis, Category
from ledger.subjects.pseudonyms import check_pseudonym

CASE_REF = re.compile(r"^[A-Za-z0-9._:/-]{1,64}$")


SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


CURRENCY = re.compile(r"^[A-Z]{3}$")


MAX_AMOUNT_MINOR = 10**15


MAX_EVIDENCE = 20


@dataclass(frozen=True, slots=True)
class ReportInput:
    """What a member files. No free text: every field is a code, a number, a time or a
    digest."""

    case_ref: str
    subject: str
    category: Category
    basis: Basis
    amount_minor: int
    currency: str
    occurred_at: dt.datetime
    confirmed_at: dt.datetime
    evidence_sha256: tuple[str, ...]
    subject_notified_at: dt.datetime | None = None
    # Fingerprints of the photos the case rests on (ledger/evidence); kept in their own
    # table, erased with the report.
    evidence_photos: tuple[PhotoInput, ...] = ()

    def check(self, now: dt.datetime) -> None:
        """Raise ``InvalidInput`` naming the field to fix."""
        if not CASE_REF.match(self.case_ref):
            raise InvalidInput(
                "case_ref is 1-64 characters of letters, digits and . _ : / -",
                fields=("case_ref",),
            )
        check_pseudonym(self.subject)
        check_photos(self.evidence_photos, "evidence_photos")
        if not 0 < self.amount_minor <= MAX_AMOUNT_MINOR:
            raise InvalidInput(
                "amount_minor is a positive integer (minor units)", fields=("amount_minor",)
            )
        if not CURRENCY.match(self.currency):
            raise InvalidInput("currency is an ISO 4217 code such as CNY", fields=("currency",))
        if not 1 <= len(self.evidence_sha256) <= MAX_EVIDENCE or not all(
            SHA256_HEX.match(d) for d in self.evidence_sha256
        ):
            raise InvalidInput(
                f"evidence_sha256 is 1-{MAX_EVIDENCE} SHA-256 digests, 64 lowercase hex each",
                fields=("evidence_sha256",),
            )
        times = {"occurred_at": self.occurred_at, "confirmed_at": self.confirmed_at}
        if self.subject_notified_at is not None:
            times["subject_notified_at"] = self.subject_notified_at
        for name, value in times.items():
            if value.tzinfo is None:
                raise InvalidInput(f"{name} needs a UTC offset", fields=(name,))
            if value > now:
                raise InvalidInput(f"{name} is in the future", fields=(name,))
        if self.confirmed_at < self.occurred_at:
            raise InvalidInput("confirmed_at is before occurred_at", fields=("confirmed_at",))
        notified = self.subject_notified_at
        if notified is not None and notified < self.occurred_at:
            raise InvalidInput(
                "subject_notified_at is before occurred_at", fields=("subject_notified_at",)
            )

    def fingerprint(self) -> str:
        """Identifies the content, so that a re-sent report is told from a different one.

        Every field but the notice time (recorded later, and not part of the case), in
        one canonical JSON: codes as their values, times in UTC, digests sorted."""
        content = {
            f.name: _canonical(getattr(self, f.name))
            for f in fields(self)
            if f.name not in NOT_CONTENT
        }
        if self.evidence_photos:  # a report without photos keeps the fingerprint it had
            content["evidence_photos"] = sorted(
                [p.pdq.hex(), p.quality] for p in self.evidence_photos
            )
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


NOT_CONTENT = frozenset({"subject_notified_at", "evidence_photos"})


def _canonical(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, tuple):
        return sorted(value)
    return value


# Two fields are stored under another name or in another form; every other field of
# ReportInput is stored as it is, in the ``reports`` column of the same name. These two
# functions are the only places that know it: a new field is declared on ReportInput,
# the model (and its migration), ReportView and the API's ReportIn and ReportOut.
_STORED_AS = {"evidence_sha256": "evidence", "subject_notified_at": "notified_at"}
_NOT_COLUMNS = frozenset({"evidence_photos"})  # rows of their own: evidence_photos


def columns_of(data: ReportInput) -> dict[str, Any]:
    """The ``reports`` column values of a filing."""
    values = {
        _STORED_AS.get(f.name, f.name): getattr(data, f.name)
        for f in fields(data)
        if f.name not in _NOT_COLUMNS
    }
    values["evidence"] = json.dumps(list(data.evidence_sha256))
    return values


def filed_values(report: Report) -> dict[str, Any]:
    """A stored report's filed fields, by their ReportInput names (``columns_of``
    reversed)."""
    values = {
        f.name: getattr(report, _STORED_AS.get(f.name, f.name))
        for f in fields(ReportInput)
        if f.name not in _NOT_COLUMNS
    }
    values["evidence_sha256"] = tuple(json.loads(report.evidence or "[]"))
    return values
