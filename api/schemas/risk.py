"""The risk query: what a member asks before an automatic refund, and the answer."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from api.locales import LOCALE_FIELD, Locale
from api.schemas import EXAMPLE_SUBJECT, Pseudonym, Reference, RequestModel, example
from api.schemas.markers import MarkerNotice, marker_notice
from ledger.scoring import service
from ledger.scoring.explanations import DECISION, RIGHTS
from ledger.scoring.service import Purpose

QUERY_EXAMPLE: JsonDict = {
    "subject": EXAMPLE_SUBJECT,
    "purpose": "refund_review",
    "reference": "refund-8841",
}


ANSWER_EXAMPLE: JsonDict = {
    "subject": EXAMPLE_SUBJECT,
    "score": 38,
    "band": "elevated",
    "recommendation": "manual_review",
    "reasons": [
        {
            "code": "R01",
            "text": "A platform confirmed a refund claim backed by forged or edited evidence.",
            "contribution": 0.81,
        }
    ],
    "counts": {
        "active_reports": 1,
        "distinct_members": 1,
        "last_90_days": 1,
        "last_365_days": 1,
        "open_disputes": 0,
        "last_report_at": "2026-11-22T07:00:00Z",
    },
    "policy_version": "2026-11-23.1",
    "explanation": {
        "summary": "1 confirmed case of refund abuse is recorded for this buyer. It was "
        "reported by 1 platform. The risk is elevated.",
        "decision": DECISION,
        "your_rights": RIGHTS,
    },
    "audit_event_id": 48214,
}


class RiskQueryIn(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [QUERY_EXAMPLE]})

    subject: Pseudonym
    purpose: Purpose = Field(description="what the answer will be used for, and only for")
    reference: Reference = Field(description="your refund request id (audited with the query)")
    locale: Locale | None = LOCALE_FIELD

    def query(self, locale: str) -> service.RiskQuery:
        """The core's query, its texts in ``locale`` (``locales.locale_of``)."""
        return service.RiskQuery(
            subject=self.subject, purpose=self.purpose, reference=self.reference, locale=locale
        )


class RiskBatchIn(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"queries": [QUERY_EXAMPLE]}]})

    queries: list[dict[str, object]] = Field(
        min_length=1, max_length=100, description="up to 100 queries, as POST /v1/risk/query"
    )


class ReasonOut(BaseModel):
    code: str = Field(description="a stable code (R01 forged evidence … R05 other)")
    text: str = Field(description="the reason, in words to show the buyer")
    contribution: float = Field(description="how much of the score it accounts for")


class CountsOut(BaseModel):
    active_reports: int = Field(description="reports that count now")
    distinct_members: int = Field(description="how many platforms filed them")
    last_90_days: int = Field(description="of them, confirmed in the last 90 days")
    last_365_days: int = Field(description="of them, confirmed in the last 365 days")
    open_disputes: int = Field(description="reports the buyer disputes, not yet answered")
    last_report_at: dt.datetime | None = Field(description="the newest confirmation")


class Explanation(BaseModel):
    summary: str = Field(description="what is recorded, in one sentence")
    decision: str = Field(description="who decides: the platform, never the ledger")
    your_rights: str = Field(description="how the buyer sees, adds to and disputes the record")


class RiskAnswer(BaseModel):
    """The assessment, explained; recorded before it was sent. It never names the
    platforms that reported, and never recommends a denial."""

    model_config = example(ANSWER_EXAMPLE)

    subject: str = Field(description="the buyer's pseudonym, as asked")
    score: int = Field(ge=0, le=100, description="0 (nothing recorded) to 100")
    band: str = Field(description="none, low, elevated, high or severe")
    recommendation: str = Field(description="proceed or manual_review; never a denial")
    reasons: list[ReasonOut] = Field(description="at most 4, the weightiest first")
    counts: CountsOut = Field(description="what the score was made from")
    policy_version: str = Field(description="the scoring policy in force (docs/scoring.md)")
    explanation: Explanation = Field(description="text a platform can show the buyer")
    audit_event_id: int = Field(
        description="the query's audit event: GET /v1/audit/events/{id}/receipt proves it"
    )
    protective_marker: MarkerNotice | None = Field(
        default=None,
        description="the buyer said their identity was misused: verify who you deal with "
        "(the recommendation is then manual_review); null when there is none",
    )

    @classmethod
    def of(cls, answer: service.RiskAnswer) -> RiskAnswer:
        a = answer.assessment
        marker = answer.marker
        return cls(
            subject=answer.subject,
            score=a.score,
            band=a.band.value,
            recommendation=a.recommendation.value,
            reasons=[
                ReasonOut(code=r.code, text=r.text, contribution=r.contribution)
                for r in answer.reasons
            ],
            counts=CountsOut.model_validate(a.counts, from_attributes=True),
            policy_version=a.policy_version,
            explanation=Explanation.model_validate(answer.explanation, from_attributes=True),
            audit_event_id=answer.audit_event_id,
            protective_marker=marker_notice(marker, answer.locale),
        )


class RiskBatchItem(BaseModel):
    index: int = Field(description="the query's position in the batch, from 0")
    status: str = Field(description="answered or rejected")
    answer: RiskAnswer | None = Field(default=None, description="the answer, when answered")
    errors: list[dict[str, str]] = Field(
        default_factory=list, description="why it was rejected: field and detail"
    )


class RiskBatchOut(BaseModel):
    model_config = example(
        {
            "items": [
                {"index": 0, "status": "answered", "answer": ANSWER_EXAMPLE, "errors": []},
                {
                    "index": 1,
                    "status": "rejected",
                    "errors": [{"field": "reference", "detail": "required: send this field"}],
                },
            ]
        }
    )

    items: list[RiskBatchItem] = Field(description="one per query, in order")
