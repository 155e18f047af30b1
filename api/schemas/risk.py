from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from api.schemas import Integer, RequestModel
from ledger.scoring.service import Purpose


class Amount(RequestModel):
    minor: Integer = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class RiskQueryIn(RequestModel):
    subject: str = Field(description="the buyer's pseudonym")
    purpose: Purpose = Field(description="what the answer will be used for, and only for")
    reference: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:/-]+$",
        description="your refund request id (audited with the query)",
    )
    amount: Amount | None = Field(default=None, description="the refund at stake")


class RiskBatchIn(RequestModel):
    queries: list[dict[str, object]] = Field(min_length=1, max_length=100)


class ReasonOut(BaseModel):
    code: str
    text: str
    contribution: float


class CountsOut(BaseModel):
    active_reports: int
    distinct_members: int
    last_90_days: int
    last_365_days: int
    open_disputes: int
    last_report_at: dt.datetime | None


class Explanation(BaseModel):
    summary: str
    decision: str
    your_rights: str


class RiskAnswer(BaseModel):
    subject: str
    score: int
    band: str
    recommendation: str
    reasons: list[ReasonOut]
    counts: CountsOut
    policy_version: str
    explanation: Explanation
    audit_event_id: int


class RiskBatchItem(BaseModel):
    index: int
    status: str
    answer: RiskAnswer | None = None
    errors: list[dict[str, str]] = Field(default_factory=list)


class RiskBatchOut(BaseModel):
    items: list[RiskBatchItem]
