"""The auto-refund gate a platform runs before granting a "refund only" request.

    make run                                   # in another terminal: prints a credential
    LEDGER_CLIENT_ID=cl_… LEDGER_CLIENT_SECRET=lsk_… python examples/refund_gate.py

For each refund request: pseudonymize the buyer (the ledger never sees the phone
number), ask for the risk, and decide: refund at once, or route to a person with the
ledger's explanation. The ledger never denies anything; a manual review is a person
looking at the case. When that person confirms abuse (say, an AI-edited damage photo),
the platform files the confirmed case, which is what other platforms will see.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sys
from dataclasses import dataclass
from typing import Any

from ledger.client import LedgerApiError, LedgerClient


@dataclass(frozen=True)
class RefundRequest:
    id: str
    buyer_phone: str
    amount_minor: int  # fen
    claim: str


@dataclass(frozen=True)
class Decision:
    refund_now: bool
    subject: str
    score: int
    band: str
    explanation: str  # what the platform may show the buyer
    audit_event_id: int


def gate(ledger: LedgerClient, request: RefundRequest) -> Decision:
    """Refund at once, or send to manual review: never deny on the score alone."""
    subject = ledger.pseudonymize("phone", request.buyer_phone)
    answer: dict[str, Any] = ledger.query_risk(subject, reference=request.id)
    explanation = answer["explanation"]
    reasons = "; ".join(r["text"] for r in answer["reasons"]) or "none"
    return Decision(
        refund_now=answer["recommendation"] == "proceed",
        subject=subject,
        score=answer["score"],
        band=answer["band"],
        explanation=f"{explanation['summary']} Reasons: {reasons}. {explanation['decision']}",
        audit_event_id=answer["audit_event_id"],
    )


def file_confirmed_case(
    ledger: LedgerClient, request: RefundRequest, subject: str, *, evidence: bytes
) -> dict[str, Any]:
    """After a reviewer confirmed the abuse and the buyer was told (notice), file it.
    ``case_ref`` makes a retry safe: the same case is never filed twice."""
    now = dt.datetime.now(dt.UTC)
    report: dict[str, Any] = ledger.report(
        case_ref=f"case-{request.id}",
        subject=subject,
        category="forged_evidence",
        basis="platform_review",
        amount_minor=request.amount_minor,
        currency="CNY",
        occurred_at=(now - dt.timedelta(days=3)).isoformat(),
        confirmed_at=now.isoformat(),
        evidence_sha256=[hashlib.sha256(evidence).hexdigest()],
        subject_notified_at=now.isoformat(),
    )
    return report


def main() -> int:
    url = os.environ.get("LEDGER_URL", "http://127.0.0.1:8000")
    client_id = os.environ.get("LEDGER_CLIENT_ID")
    secret = os.environ.get("LEDGER_CLIENT_SECRET")
    if not client_id or not secret:
        sys.stderr.write(__doc__ or "")
        return 2
    run = os.urandom(3).hex()  # fresh references, so the example can run again
    requests = [
        RefundRequest(f"rf-{run}-1", "13800138000", 12900, "arrived broken (photo attached)"),
        RefundRequest(f"rf-{run}-2", "+86 139 0013 9000", 45900, "parcel was empty"),
    ]
    with LedgerClient(url, client_id, secret) as ledger:
        try:
            for request in requests:
                decision = gate(ledger, request)
                action = "refund now" if decision.refund_now else "manual review"
                sys.stdout.write(
                    f"{request.id}: score {decision.score} ({decision.band}) -> {action}\n"
                    f"  shown to the buyer: {decision.explanation}\n"
                )
            # A reviewer looks at the first claim and finds the photo AI-edited.
            first = requests[0]
            subject = ledger.pseudonymize("phone", first.buyer_phone)
            report = file_confirmed_case(ledger, first, subject, evidence=b"photo + analysis")
            sys.stdout.write(f"{first.id}: confirmed case filed as report {report['id']}\n")
            after = gate(ledger, RefundRequest(f"rf-{run}-3", first.buyer_phone, 8800, "again"))
            sys.stdout.write(
                f"rf-{run}-3 (same buyer): score {after.score} ({after.band}) -> "
                f"{'refund now' if after.refund_now else 'manual review'}\n"
            )
        except LedgerApiError as exc:
            sys.stderr.write(f"the ledger refused: {exc}\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
