from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.schemas import Integer, RequestModel
from ledger.disputes.models import Resolution
from ledger.disputes.service import ReasonCode
from ledger.reports.lifecycle import WithdrawalReason
from ledger.reports.policy import Basis, Category, Status


class ReportIn(RequestModel):
    """A confirmed case. No free-text fields."""

    case_ref: str = Field(description="your own reference for the case; unique per member")
    subject: str = Field(description="the buyer's pseudonym (43 characters, base64url)")
    category: Category
    basis: Basis = Field(description="how the abuse was confirmed")
    amount_minor: Integer = Field(description="the refund at stake, in minor units (fen, cents)")
    currency: str = Field(description="ISO 4217, e.g. CNY")
    occurred_at: AwareDatetime
    confirmed_at: AwareDatetime
    evidence_sha256: list[str] = Field(description="SHA-256 of the evidence you keep")
    subject_notified_at: AwareDatetime | None = Field(
        default=None, description="when the buyer was told (art. 15); the report counts from then"
    )


class StatementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    text: str
    added_at: dt.datetime


class ReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    case_ref: str
    subject: str
    category: Category
    basis: Basis
    amount_minor: int
    currency: str
    evidence_sha256: list[str]
    occurred_at: dt.datetime
    confirmed_at: dt.datetime
    subject_notified_at: dt.datetime | None
    filed_at: dt.datetime
    expires_at: dt.datetime
    status: Status
    open_disputes: int
    statements: list[StatementOut]
    audit_event_id: int | None = Field(
        description="GET /v1/audit/events/{id}/receipt proves this filing is in the log"
    )


class ReportPage(BaseModel):
    reports: list[ReportOut]
    next_cursor: str | None


class BatchIn(RequestModel):
    reports: list[dict[str, object]] = Field(max_length=1000, min_length=1)


class ItemError(BaseModel):
    field: str
    detail: str


class BatchItemOut(BaseModel):
    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    report_id: uuid.UUID | None = None
    type: str | None = Field(default=None, description="problem type when rejected")
    errors: list[ItemError] = Field(default_factory=list)


class BatchOut(BaseModel):
    accepted: int
    duplicate: int
    rejected: int
    items: list[BatchItemOut]


class WithdrawalIn(RequestModel):
    reason: WithdrawalReason


class NoticeIn(RequestModel):
    notified_at: AwareDatetime


class DisputeIn(RequestModel):
    subject: str
    report_ids: list[uuid.UUID] = Field(min_length=1, max_length=50)
    reference: str = Field(description="your reference for the buyer's request")


class DisputeItemOut(BaseModel):
    dispute_id: uuid.UUID
    report_id: uuid.UUID
    subject: str | None
    resolution: Resolution
    opened_at: dt.datetime
    deadline: dt.datetime
    days_left: int
    resolved_at: dt.datetime | None
    reason_code: str | None


class DisputeOut(BaseModel):
    id: uuid.UUID
    subject: str
    reference: str
    opened_at: dt.datetime
    deadline: dt.datetime
    items: list[DisputeItemOut]


class DisputeList(BaseModel):
    items: list[DisputeItemOut] = Field(default_factory=list)
    disputes: list[DisputeOut] = Field(default_factory=list)
    next_cursor: str | None = Field(default=None, description="the next page; none when last")


class ResolutionIn(RequestModel):
    outcome: Literal["upheld", "withdrawn"]
    reason_code: ReasonCode
    evidence_sha256: str | None = Field(
        default=None, description="required to uphold: SHA-256 of the re-checked evidence"
    )


class StatementIn(RequestModel):
    subject: str
    report_id: uuid.UUID
    text: str = Field(description="the buyer's own words, at most 200 characters")


class DisclosureIn(RequestModel):
    subject: str
    purpose: Literal["subject_request"]
    reference: str = Field(min_length=1, max_length=128)


class DisclosedReportOut(BaseModel):
    reporting_member: str
    report: ReportOut


class InquiryOut(BaseModel):
    member: str
    at: dt.datetime
    purpose: str | None
    kind: str


class DisclosureOut(BaseModel):
    subject: str
    reports: list[DisclosedReportOut]
    inquiries: list[InquiryOut]
    how_to_dispute: str
