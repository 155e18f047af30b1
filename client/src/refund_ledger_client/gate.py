"""The refund gate: one decision per refund request, within one deadline, with what
happens when the ledger cannot answer stated by the integrator.

    gate = RefundGate(ledger, if_unavailable="fail_closed")
    decision = gate.decide(identifiers=[("phone", phone)], reference=refund_id, photos=prints)
    if decision.action == "proceed":
        refund_automatically()
    else:
        send_to_a_person(decision)

``if_unavailable`` has no default, on purpose: ``fail_open`` lets the automatic refund go
ahead when the ledger is down or slow (the platform's own checks still apply), and
``fail_closed`` sends it to a person. Neither refuses a refund: the ledger never
recommends a denial, and an outage must not become one.

"Cannot answer" is ``errors.NO_ANSWER``: unreachable, past the deadline, 503, 429 or a
5xx. A wrong secret, a missing scope or bad input raises as it would outside the gate:
those are mistakes to fix, not outages, and silently failing open on them would turn
the ledger off without anyone noticing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from refund_ledger_client.client import AsyncLedgerClient, LedgerClient
from refund_ledger_client.errors import NO_ANSWER, LedgerError
from refund_ledger_client.identifiers import Kind
from refund_ledger_client.models import EvidenceCheck, Fingerprint, Recommendation, RiskAnswer

log = logging.getLogger("refund_ledger_client")

L = TypeVar("L", LedgerClient, AsyncLedgerClient)
FailMode = Literal["fail_open", "fail_closed"]
_FALLBACK: dict[str, Recommendation] = {"fail_open": "proceed", "fail_closed": "manual_review"}


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one refund request. ``answered`` is False when the ledger could
    not answer in time and ``action`` is the gate's ``if_unavailable`` fallback
    (``error`` says why)."""

    action: Recommendation
    answered: bool
    risk: tuple[RiskAnswer, ...] = ()
    evidence: EvidenceCheck | None = None
    error: LedgerError | None = None

    @property
    def explanations(self) -> tuple[str, ...]:
        """The summaries to show the buyer, one per answer that asks for review."""
        found = [a.explanation.summary for a in self.risk if a.needs_review]
        if self.evidence is not None and self.evidence.needs_review:
            found.append(self.evidence.explanation.summary)
        return tuple(found)


class _Gate(Generic[L]):
    def __init__(
        self,
        ledger: L,
        *,
        if_unavailable: FailMode,
        purpose: str = "refund_review",
        deadline: float | None = None,
    ) -> None:
        if if_unavailable not in _FALLBACK:
            raise ValueError(
                f"if_unavailable must be 'fail_open' or 'fail_closed', not {if_unavailable!r}: "
                "say what a refund does when the ledger cannot answer in time"
            )
        self.ledger: L = ledger
        self.if_unavailable = if_unavailable
        self.purpose = purpose
        self.deadline = deadline

    @staticmethod
    def _answered(result: tuple[list[RiskAnswer], EvidenceCheck | None]) -> Decision:
        risk, evidence = result
        review = any(a.needs_review for a in risk) or (
            evidence is not None and evidence.needs_review
        )
        action: Recommendation = "manual_review" if review else "proceed"
        return Decision(action, answered=True, risk=tuple(risk), evidence=evidence)

    def _unanswered(self, error: LedgerError) -> Decision:
        action = _FALLBACK[self.if_unavailable]
        log.warning("ledger could not answer (%s): %s, as configured", type(error).__name__, action)
        return Decision(action, answered=False, error=error)


class RefundGate(_Gate[LedgerClient]):
    """The gate over a ``LedgerClient``."""

    def decide(
        self,
        *,
        identifiers: Sequence[tuple[Kind | str, str]],
        reference: str,
        photos: Sequence[Fingerprint] = (),
    ) -> Decision:
        """The decision for one refund request: ``reference`` is its id (audited)."""
        try:
            result = self.ledger.assess(
                identifiers,
                reference=reference,
                photos=photos,
                purpose=self.purpose,
                deadline=self.deadline,
            )
        except NO_ANSWER as exc:
            return self._unanswered(exc)
        return self._answered(result)


class AsyncRefundGate(_Gate[AsyncLedgerClient]):
    """The gate over an ``AsyncLedgerClient``; ``decide`` is awaited."""

    async def decide(
        self,
        *,
        identifiers: Sequence[tuple[Kind | str, str]],
        reference: str,
        photos: Sequence[Fingerprint] = (),
    ) -> Decision:
        """The decision for one refund request: ``reference`` is its id (audited)."""
        try:
            result = await self.ledger.assess(
                identifiers,
                reference=reference,
                photos=photos,
                purpose=self.purpose,
                deadline=self.deadline,
            )
        except NO_ANSWER as exc:
            return self._unanswered(exc)
        return self._answered(result)
