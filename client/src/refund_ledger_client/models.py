"""What the ledger answers, as typed, frozen dataclasses with the documented fields
(docs/api.md; the OpenAPI description at /openapi.json has the same names).

Times are timezone-aware ``datetime``; ids are strings. A field the ledger adds later is
ignored by an older SDK rather than refused, so an upgrade of the ledger never breaks a
member's pipeline; a documented field that is missing is an error (``from_json``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from refund_ledger_client.errors import FieldError, LedgerError

T = TypeVar("T")


class UnexpectedAnswer(LedgerError, ValueError):
    """The ledger's answer does not have the documented shape (a proxy's page, or a
    ledger of another version); the SDK refuses it rather than guess."""


# --- inputs -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A photo as the ledger sees it: never the photo (``fingerprint()`` makes one)."""

    pdq: str  # 64 lowercase hex digits, as PDQ's reference implementations print it
    quality: int
    variants: tuple[str, ...] = ()  # the 7 rotations and mirror images, when asked for
    provenance: tuple[dict[str, str], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"pdq": self.pdq, "quality": self.quality}
        if self.variants:
            body["variants"] = list(self.variants)
        if self.provenance:
            body["provenance"] = [dict(v) for v in self.provenance]
        return body


# --- risk -------------------------------------------------------------------------------

Recommendation = Literal["proceed", "manual_review"]


@dataclass(frozen=True, slots=True)
class Reason:
    code: str  # a stable code: R01 forged evidence … R05 other
    text: str  # in words to show the buyer
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
class Explanation:
    summary: str  # what is recorded, in one sentence
    decision: str  # who decides: the platform, never the ledger
    your_rights: str  # how the buyer sees, adds to and disputes the record


@dataclass(frozen=True, slots=True)
class MarkerNotice:
    """The buyer said someone else used their identity: verify who you deal with (for
    example with a code to a number they confirm); not a finding against them."""

    kind: str  # identity_misused
    placed_at: dt.datetime
    expires_at: dt.datetime
    advice: str  # in the answer's language, to show your reviewer


@dataclass(frozen=True, slots=True)
class Marker:
    """A protective marker as placed, renewed or removed at the buyer's request."""

    id: str
    subject: str
    kind: str
    placed_at: dt.datetime
    expires_at: dt.datetime
    renewed_at: dt.datetime | None
    removed_at: dt.datetime | None
    in_force: bool


@dataclass(frozen=True, slots=True)
class RiskAnswer:
    """The assessment before a refund; it never names the platforms that reported and
    never recommends a denial."""

    subject: str
    score: int  # 0 (nothing recorded) to 100
    band: str  # none, low, elevated, high or severe
    recommendation: Recommendation
    reasons: tuple[Reason, ...]
    counts: Counts
    policy_version: str
    explanation: Explanation
    audit_event_id: int
    protective_marker: MarkerNotice | None = None

    @property
    def needs_review(self) -> bool:
        return self.recommendation == "manual_review"


@dataclass(frozen=True, slots=True)
class RiskBatchItem:
    index: int
    status: Literal["answered", "rejected"]
    answer: RiskAnswer | None = None
    errors: tuple[FieldError, ...] = ()


# --- evidence ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ForgedElsewhere:
    distance: int  # bits of 256 to the nearest matching photo
    reports: int  # counting forged-evidence reports with a matching photo
    members: int  # how many platforms filed them (never which)


@dataclass(frozen=True, slots=True)
class ListingMatch:
    distance: int
    reference: str  # your own listing reference


@dataclass(frozen=True, slots=True)
class PhotoResult:
    index: int
    forged_elsewhere: ForgedElsewhere | None
    own_listings: tuple[ListingMatch, ...]
    other_listings: int
    recommendation: Recommendation
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EvidenceCheck:
    photos: tuple[PhotoResult, ...]
    recommendation: Recommendation
    explanation: Explanation
    audit_event_id: int
    protective_marker: MarkerNotice | None = None  # when the check named the subject

    @property
    def needs_review(self) -> bool:
        return self.recommendation == "manual_review"


@dataclass(frozen=True, slots=True)
class ListingPhotos:
    registered: int
    unchanged: int


@dataclass(frozen=True, slots=True)
class ListingWithdrawal:
    withdrawn: int


# --- reports ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Statement:
    text: str
    added_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Report:
    id: str
    case_ref: str
    subject: str
    category: str
    basis: str
    amount_minor: int
    currency: str
    occurred_at: dt.datetime
    confirmed_at: dt.datetime
    subject_notified_at: dt.datetime | None
    filed_at: dt.datetime
    expires_at: dt.datetime
    status: str
    open_disputes: int
    statements: tuple[Statement, ...]
    audit_event_id: int | None = None
    filed_under_marker: bool = False  # the buyer had a protective marker in force


@dataclass(frozen=True, slots=True)
class ReportPage:
    reports: tuple[Report, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class BatchItem:
    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    report_id: str | None = None
    type: str | None = None
    errors: tuple[FieldError, ...] = ()


@dataclass(frozen=True, slots=True)
class BatchResult:
    accepted: int
    duplicate: int
    rejected: int
    items: tuple[BatchItem, ...]


# --- disputes and the buyer's rights ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class DisputeItem:
    dispute_id: str
    report_id: str
    subject: str | None
    resolution: str  # pending, upheld, withdrawn or lapsed
    opened_at: dt.datetime
    deadline: dt.datetime
    days_left: int
    resolved_at: dt.datetime | None
    reason_code: str | None
    for_the_buyer: str


@dataclass(frozen=True, slots=True)
class Dispute:
    id: str
    subject: str
    reference: str
    opened_at: dt.datetime
    deadline: dt.datetime
    items: tuple[DisputeItem, ...]


@dataclass(frozen=True, slots=True)
class DisputeList:
    items: tuple[DisputeItem, ...] = ()  # assigned to you
    disputes: tuple[Dispute, ...] = ()  # opened by you
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class DisclosedReport:
    reporting_member: str
    report: Report
    evidence_photos: int


@dataclass(frozen=True, slots=True)
class Inquiry:
    member: str
    at: dt.datetime
    purpose: str | None
    kind: str


@dataclass(frozen=True, slots=True)
class DisclosedDisputeItem:
    report_id: str
    reporting_member: str  # the platform that must answer
    resolution: str
    deadline: dt.datetime
    resolved_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class DisclosedDispute:
    id: str
    opened_by: str
    opened_at: dt.datetime
    items: tuple[DisclosedDisputeItem, ...]


@dataclass(frozen=True, slots=True)
class DisclosedMarker(Marker):
    placed_by: str  # the platforms the buyer asked
    removed_by: str | None


@dataclass(frozen=True, slots=True)
class Disclosure:
    subject: str
    reports: tuple[DisclosedReport, ...]
    inquiries: tuple[Inquiry, ...]
    how_to_dispute: str
    disputes: tuple[DisclosedDispute, ...] = ()
    markers: tuple[DisclosedMarker, ...] = ()


# --- the audit log ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    tree_size: int
    root_hash: str
    created_at: dt.datetime
    key_id: str
    note: str
    cosignatures: tuple[str, ...] = ()


# --- reading JSON -----------------------------------------------------------------------


def from_json(cls: type[T], data: object) -> T:
    """``cls`` (a dataclass above) from the ledger's JSON; ``UnexpectedAnswer`` when a
    documented field is missing or of the wrong type. Unknown fields are ignored."""
    try:
        result: T = _read(cls, data)
    except (KeyError, TypeError, ValueError) as exc:
        raise UnexpectedAnswer(
            f"the ledger's answer is not a {cls.__name__} as documented: {exc}"
        ) from None
    return result


@functools.cache
def _fields(cls: type[Any]) -> tuple[tuple[str, Any, bool], ...]:
    hints = typing.get_type_hints(cls)
    return tuple(
        (
            f.name,
            hints[f.name],
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
    )


def _read(kind: Any, value: object) -> Any:  # noqa: PLR0911, PLR0912 - a branch per kind of type
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return None if value is None else _read(options[0], value)
    if origin is tuple:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        return tuple(_read(typing.get_args(kind)[0], v) for v in value)
    if origin is Literal:
        if value not in typing.get_args(kind):
            raise ValueError(f"{value!r} is not one of {typing.get_args(kind)}")
        return value
    if origin is dict:
        if not isinstance(value, Mapping):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        return dict(value)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if not isinstance(value, Mapping):
            raise TypeError(f"expected an object for {kind.__name__}, got {type(value).__name__}")
        args = {}
        for name, hint, required in _fields(kind):
            if name in value:
                args[name] = _read(hint, value[name])
            elif required:
                raise KeyError(f"{kind.__name__}.{name} is missing")
        return kind(**args)
    if kind is dt.datetime:
        if not isinstance(value, str):
            raise TypeError(f"expected a date-time string, got {type(value).__name__}")
        return dt.datetime.fromisoformat(value)
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind in (int, str, bool):
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value
    raise TypeError(f"cannot read {kind!r}")  # pragma: no cover - a field type above
