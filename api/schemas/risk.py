from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from api.schemas import RequestModel
from ledger.scoring import service
from ledger.scoring.service import Purpose


class RiskQueryIn(RequestModel):
    subject: str = Field(description="the buyer's pseudonym")
    purpose: Purpose = Field(description="what the answer will be used for, and only for")
    reference: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:/-]+$",
        description="your refund request id (audited with the query)",
    )

    def query(self) -> service.RiskQuery:
        return service.RiskQuery(
            subject=self.subject, purpose=self.purpose, reference=self.reference
        )


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

    @classmethod
    def of(cls, answer: service.RiskAnswer) -> RiskAnswer:
        a = answer.assessment
        return cls(
            subject=answer.subject,
            score=a.score,
            band=a.band.value,
            recommendation=a.recommendation.value,
            reasons=[
                ReasonOut(code=r.code, text=r.text, contribution=r.contribution) for r in a.reasons
            ],
            counts=CountsOut.model_validate(a.counts, from_attributes=True),
            policy_version=a.policy_version,
            explanation=Explanation.model_validate(answer.explanation, from_attributes=True),
            audit_event_id=answer.audit_event_id,
        )


class RiskBatchItem(BaseModel):
    index: int
    status: str
    answer: RiskAnswer | None = None
    errors: list[dict[str, str]] = Field(default_factory=list)


class RiskBatchOut(BaseModel):
    items: list[RiskBatchItem]
