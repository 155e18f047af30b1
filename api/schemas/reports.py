"""Reports, disputes and a buyer's own file: what members send and what they get back."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from api.locales import LOCALE_FIELD, Locale
from api.schemas import (
    EXAMPLE_DISPUTE_ID,
    EXAMPLE_REPORT_ID,
    EXAMPLE_SUBJECT,
    Integer,
    Pseudonym,
    Reference,
    RequestModel,
    Sha256Hex,
    checked_by_the_core,
    example,
)
from api.schemas.evidence import PhotoIn
from api.schemas.markers import MarkerOut
from ledger.disputes.models import Resolution
from ledger.disputes.service import MAX_REPORTS, ReasonCode
from ledger.evidence.photos import MAX_PHOTOS
from ledger.reports.content import MAX_AMOUNT_MINOR, MAX_EVIDENCE
from ledger.reports.lifecycle import WithdrawalReason
from ledger.reports.policy import Basis, Category, Status
from ledger.subjects.service import HOW_TO_DISPUTE, MAX_STATEMENT

NEXT_CURSOR = "the next page's cursor; null on the last page"
REPORT_EXAMPLE: JsonDict = {
    "case_ref": "case-2026-118842",
    "subject": EXAMPLE_SUBJECT,
    "category": "forged_evidence",
    "basis": "platform_review",
    "amount_minor": 12900,
    "currency": "CNY",
    "occurred_at": "2026-11-20T09:30:00+08:00",
    "confirmed_at": "2026-11-22T15:00:00+08:00",
    "evidence_sha256": ["9f2c4d1e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f10"],
    "subject_notified_at": "2026-11-22T16:00:00+08:00",
}


REPORT_OUT_EXAMPLE: JsonDict = REPORT_EXAMPLE | {
    "id": EXAMPLE_REPORT_ID,
    "filed_at": "2026-11-22T08:00:01Z",
    "expires_at": "2031-11-22T08:00:01Z",
    "status": "active",
    "open_disputes": 0,
    "statements": [],
    "audit_event_id": 48213,
    "filed_under_marker": False,
}
DISPUTE_ITEM_EXAMPLE: JsonDict = {
    "dispute_id": EXAMPLE_DISPUTE_ID,
    "report_id": EXAMPLE_REPORT_ID,
    "subject": EXAMPLE_SUBJECT,
    "resolution": "open",
    "opened_at": "2026-11-25T02:00:00Z",
    "deadline": "2026-12-15T02:00:00Z",
    "days_left": 14,
    "resolved_at": None,
    "reason_code": None,
    "for_the_buyer": "您的异议已转给报送这条记录的平台。该平台须在2026年12月15日前答复；"
    "逾期未答复的，这条记录不再计入。",
}


class ReportIn(RequestModel):
    """A confirmed case. No free-text fields."""

    model_config = ConfigDict(json_schema_extra={"examples": [REPORT_EXAMPLE]})

    case_ref: str = Field(
        json_schema_extra=checked_by_the_core(pattern=r"^[A-Za-z0-9._:/-]{1,64}$"),
        description="your own reference for the case, unique per member: re-sending it "
        "never files twice",
    )
    subject: Pseudonym
    category: Category = Field(description="what kind of abuse was confirmed")
    basis: Basis = Field(description="how the abuse was confirmed")
    amount_minor: Integer = Field(
        json_schema_extra=checked_by_the_core(minimum=1, maximum=MAX_AMOUNT_MINOR),
        description="the refund at stake, in minor units (fen, cents)",
    )
    currency: str = Field(
        json_schema_extra=checked_by_the_core(pattern=r"^[A-Z]{3}$"),
        description="ISO 4217, e.g. CNY",
    )
    occurred_at: AwareDatetime = Field(description="when the abusive claim was made, with offset")
    confirmed_at: AwareDatetime = Field(
        description="when your review confirmed it, with offset; not before occurred_at"
    )
    evidence_sha256: list[Sha256Hex] = Field(
        json_schema_extra=checked_by_the_core(minItems=1, maxItems=MAX_EVIDENCE),
        description="SHA-256 of each piece of evidence you keep (the ledger keeps no files)",
    )
    subject_notified_at: AwareDatetime | None = Field(
        default=None, description="when the buyer was told (art. 15); the report counts from then"
    )
    evidence_photos: list[PhotoIn] = Field(
        default_factory=list,
        json_schema_extra=checked_by_the_core(maxItems=MAX_PHOTOS),
        description="fingerprints of the photos the case rests on (the SDK's "
        "fingerprint()): found again by other platforms' evidence checks while the "
        "report counts; erased with it",
    )


class StatementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    text: str = Field(description="the buyer's statement, in their own words")
    added_at: dt.datetime = Field(description="when it was added")


class ReportOut(BaseModel):
    """A report as its member sees it now."""

    model_config = example(REPORT_OUT_EXAMPLE, from_attributes=True)

    id: uuid.UUID = Field(description="the report's id")
    case_ref: str = Field(description="your reference for the case")
    subject: str = Field(description="the buyer's pseudonym")
    category: Category = Field(description="what kind of abuse was confirmed")
    basis: Basis = Field(description="how it was confirmed")
    amount_minor: int = Field(description="the refund at stake, in minor units")
    currency: str = Field(description="ISO 4217")
    evidence_sha256: list[str] = Field(description="SHA-256 of the evidence you keep")
    occurred_at: dt.datetime = Field(description="when the abusive claim was made")
    confirmed_at: dt.datetime = Field(description="when it was confirmed")
    subject_notified_at: dt.datetime | None = Field(
        description="when the buyer was told; null until you record the notice"
    )
    filed_at: dt.datetime = Field(description="when the ledger took the report")
    expires_at: dt.datetime = Field(description="when it stops counting and is purged (5 years)")
    status: Status = Field(
        description="pending_notice, active, disputed, suppressed, withdrawn or expired: "
        "only active and disputed reports count"
    )
    open_disputes: int = Field(description="disputes on this report not yet answered")
    statements: list[StatementOut] = Field(description="the buyer's statements, oldest first")
    audit_event_id: int | None = Field(
        description="GET /v1/audit/events/{id}/receipt proves this filing is in the log"
    )
    filed_under_marker: bool = Field(
        default=False,
        description="filed while the buyer had a protective marker (identity_misused) in "
        "force: someone else may have used their identity",
    )


class ReportPage(BaseModel):
    model_config = example({"reports": [REPORT_OUT_EXAMPLE], "next_cursor": None})

    reports: list[ReportOut] = Field(description="this page of your reports, oldest first")
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class BatchIn(RequestModel):
    """Up to 1,000 reports, each as ``POST /v1/reports`` takes it; each is accepted or
    rejected on its own."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"reports": [REPORT_EXAMPLE]}]})

    reports: list[dict[str, object]] = Field(
        max_length=1000, min_length=1, description="the reports, as POST /v1/reports takes one"
    )


class ItemError(BaseModel):
    field: str = Field(description="the field, as sent (e.g. amount_minor)")
    detail: str = Field(description="what is wrong with it, and how to fix it")


class BatchItemOut(BaseModel):
    index: int = Field(description="the report's position in the batch, from 0")
    status: Literal["accepted", "duplicate", "rejected"] = Field(
        description="accepted (filed now), duplicate (filed before) or rejected"
    )
    report_id: uuid.UUID | None = Field(
        default=None, description="the report's id (for a conflict: the one already filed)"
    )
    type: str | None = Field(default=None, description="problem type when rejected")
    errors: list[ItemError] = Field(
        default_factory=list, description="why it was rejected, field by field"
    )


class BatchOut(BaseModel):
    model_config = example(
        {
            "accepted": 1,
            "duplicate": 0,
            "rejected": 1,
            "items": [
                {"index": 0, "status": "accepted", "report_id": EXAMPLE_REPORT_ID, "errors": []},
                {
                    "index": 1,
                    "status": "rejected",
                    "type": "/problems/validation",
                    "errors": [
                        {
                            "field": "amount_minor",
                            "detail": "amount_minor is a positive integer (minor units)",
                        }
                    ],
                },
            ],
        }
    )

    accepted: int = Field(description="reports filed by this call")
    duplicate: int = Field(description="reports filed before, under the same case_ref")
    rejected: int = Field(description="reports not filed: see their items")
    items: list[BatchItemOut] = Field(description="one per report sent, in order")


class WithdrawalIn(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "confirmed_in_error"}]})

    reason: WithdrawalReason = Field(description="why the report is withdrawn")


class NoticeIn(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"notified_at": "2026-11-22T16:00:00+08:00"}]}
    )

    notified_at: AwareDatetime = Field(
        description="when the buyer was told of the report, with offset; not in the future"
    )


class DisputeIn(RequestModel):
    """A buyer's dispute, opened by the platform they use, against reports on them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "subject": EXAMPLE_SUBJECT,
                    "report_ids": ["01938f0c-5b7e-7a31-9d2c-0f4b8e6a1c22"],
                    "reference": "ticket-55120",
                }
            ]
        }
    )

    subject: Pseudonym
    report_ids: list[uuid.UUID] | None = Field(
        default=None,
        json_schema_extra=checked_by_the_core(minItems=1, maxItems=MAX_REPORTS),
        description="the reports disputed (from disclosure); leave out to dispute every "
        "report on the buyer that counts now, each routed to its own member",
    )
    reference: Reference = Field(description="your reference for the buyer's request")
    locale: Locale | None = LOCALE_FIELD


class DisputeItemOut(BaseModel):
    model_config = example(DISPUTE_ITEM_EXAMPLE)

    dispute_id: uuid.UUID = Field(description="the dispute's id")
    report_id: uuid.UUID = Field(description="the disputed report")
    subject: str | None = Field(description="the buyer's pseudonym")
    resolution: Resolution = Field(
        description="open, upheld, withdrawn or unverifiable (unanswered past the deadline)"
    )
    opened_at: dt.datetime = Field(description="when the dispute was opened")
    deadline: dt.datetime = Field(description="when the reporting member must have answered")
    days_left: int = Field(description="whole days until the deadline (0 when past)")
    resolved_at: dt.datetime | None = Field(description="when it was answered")
    reason_code: str | None = Field(description="why it was upheld or withdrawn")
    for_the_buyer: str = Field(
        description="where the objection stands, in words to show the buyer (in the "
        "request's language: docs/api.md)"
    )


class DisputeOut(BaseModel):
    model_config = example(
        {
            "id": EXAMPLE_DISPUTE_ID,
            "subject": EXAMPLE_SUBJECT,
            "reference": "ticket-55120",
            "opened_at": "2026-11-25T02:00:00Z",
            "deadline": "2026-12-15T02:00:00Z",
            "items": [DISPUTE_ITEM_EXAMPLE],
        }
    )

    id: uuid.UUID = Field(description="the dispute's id")
    subject: str = Field(description="the buyer's pseudonym")
    reference: str = Field(description="your reference for the buyer's request")
    opened_at: dt.datetime = Field(description="when it was opened")
    deadline: dt.datetime = Field(description="20 days after it was opened")
    items: list[DisputeItemOut] = Field(description="one per disputed report")


class DisputeList(BaseModel):
    model_config = example({"items": [DISPUTE_ITEM_EXAMPLE], "disputes": [], "next_cursor": None})

    items: list[DisputeItemOut] = Field(
        default_factory=list, description="assigned=me: dispute items on your reports"
    )
    disputes: list[DisputeOut] = Field(
        default_factory=list, description="opened=me: disputes you opened for buyers"
    )
    next_cursor: str | None = Field(default=None, description=NEXT_CURSOR)


class ResolutionIn(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "outcome": "upheld",
                    "reason_code": "evidence_rechecked",
                    "evidence_sha256": (
                        "9f2c4d1e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f10"
                    ),
                }
            ]
        }
    )

    outcome: Literal["upheld", "withdrawn"] = Field(
        description="upheld (the report stands) or withdrawn (it stops counting at once)"
    )
    reason_code: ReasonCode = Field(description="why")
    evidence_sha256: Sha256Hex | None = Field(
        default=None, description="required to uphold: SHA-256 of the re-checked evidence"
    )


class StatementIn(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "subject": EXAMPLE_SUBJECT,
                    "report_id": "01938f0c-5b7e-7a31-9d2c-0f4b8e6a1c22",
                    "text": "The parcel was damaged in transit; the courier confirmed it.",
                }
            ]
        }
    )

    subject: Pseudonym
    report_id: uuid.UUID = Field(description="the report the statement is about")
    text: str = Field(
        json_schema_extra=checked_by_the_core(
            minLength=1, maxLength=MAX_STATEMENT, pattern=r"^[^\x00-\x1f]+$"
        ),
        description="the buyer's own words, one line of at most 200 characters",
    )


class DisclosureIn(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"subject": EXAMPLE_SUBJECT, "purpose": "subject_request", "reference": "ask-7"}
            ]
        }
    )

    subject: Pseudonym
    purpose: Literal["subject_request"] = Field(
        description="always subject_request: the buyer asked for their own file"
    )
    reference: Reference = Field(description="your reference for the buyer's request")
    locale: Locale | None = LOCALE_FIELD


class DisclosedReportOut(BaseModel):
    reporting_member: str = Field(description="the platform that filed the report")
    report: ReportOut = Field(description="the report, as its member sees it")
    evidence_photos: int = Field(
        default=0,
        description="how many photo fingerprints the report keeps (found again by other "
        "platforms' evidence checks while it counts); the fingerprints are never shown",
    )


class InquiryOut(BaseModel):
    member: str = Field(description="the platform that looked the buyer up")
    at: dt.datetime = Field(description="when")
    purpose: str | None = Field(description="the purpose it named")
    kind: str = Field(description="the audit tag: a risk query or a disclosure")


class DisclosedItemOut(BaseModel):
    report_id: uuid.UUID = Field(description="the disputed report")
    reporting_member: str = Field(description="the platform that must answer")
    resolution: Resolution = Field(description="open, upheld, withdrawn or unverifiable")
    deadline: dt.datetime = Field(description="answer by then, or the report stops counting")
    resolved_at: dt.datetime | None = Field(description="when it was answered")


class DisclosedDisputeOut(BaseModel):
    id: uuid.UUID = Field(description="the dispute's id")
    opened_by: str = Field(description="the platform the buyer asked")
    opened_at: dt.datetime = Field(description="when")
    items: list[DisclosedItemOut] = Field(description="one per disputed report")


class DisclosedMarkerOut(MarkerOut):
    placed_by: str = Field(description="the platform the buyer asked")
    removed_by: str | None = Field(description="the platform the buyer asked to remove it")


class DisclosureOut(BaseModel):
    model_config = example(
        {
            "subject": EXAMPLE_SUBJECT,
            "reports": [
                {"reporting_member": "shop-a", "report": REPORT_OUT_EXAMPLE, "evidence_photos": 1}
            ],
            "inquiries": [
                {
                    "member": "shop-b",
                    "at": "2026-11-28T03:10:00Z",
                    "purpose": "refund_review",
                    "kind": "risk:subject:queried",
                }
            ],
            "how_to_dispute": HOW_TO_DISPUTE,
            "disputes": [
                {
                    "id": EXAMPLE_DISPUTE_ID,
                    "opened_by": "shop-b",
                    "opened_at": "2026-11-25T02:00:00Z",
                    "items": [
                        {
                            "report_id": EXAMPLE_REPORT_ID,
                            "reporting_member": "shop-a",
                            "resolution": "open",
                            "deadline": "2026-12-15T02:00:00Z",
                            "resolved_at": None,
                        }
                    ],
                }
            ],
            "markers": [],
        }
    )

    subject: str = Field(description="the buyer's pseudonym")
    reports: list[DisclosedReportOut] = Field(
        description="every report held on the buyer that has not expired, whatever its status"
    )
    inquiries: list[InquiryOut] = Field(
        description="who looked the buyer up in the last two years, newest first"
    )
    how_to_dispute: str = Field(description="what the buyer can do, in words to show them")
    disputes: list[DisclosedDisputeOut] = Field(
        default_factory=list,
        description="the buyer's disputes, each part with the member it went to",
    )
    markers: list[DisclosedMarkerOut] = Field(
        default_factory=list,
        description="protective markers the buyer has had, in force or not, oldest first",
    )
