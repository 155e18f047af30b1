"""The member SDK of the refund-abuse ledger: pseudonymize buyers on your side, decide
refunds within a deadline, file and dispute reports, verify audit receipts. See the
ledger's docs/integration.md and docs/sdk.md.

    from refund_ledger_client import LedgerClient, RefundGate

    with LedgerClient(url, client_id, client_secret) as ledger:
        gate = RefundGate(ledger, if_unavailable="fail_closed")
        decision = gate.decide(identifiers=[("phone", "13800138000")], reference="refund-8841")

Photo fingerprints (``fingerprint``) need the ``photos`` extra:
``pip install 'refund-ledger-client[photos]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from refund_ledger_client._core import RetryPolicy
from refund_ledger_client.client import AsyncLedgerClient, LedgerClient
from refund_ledger_client.errors import (
    NO_ANSWER,
    ApiError,
    AuthenticationError,
    Conflict,
    DeadlineExceeded,
    FieldError,
    LedgerError,
    NotFound,
    PermissionDenied,
    PseudonymKeyError,
    RateLimited,
    ServerError,
    TransportError,
    Unavailable,
    UnusablePhoto,
    ValidationError,
)
from refund_ledger_client.gate import AsyncRefundGate, Decision, RefundGate
from refund_ledger_client.hooks import AttemptEvent, CallEvent, LoggingObserver, Observer
from refund_ledger_client.identifiers import InvalidIdentifier, Kind, normalize, oprf_input
from refund_ledger_client.models import (
    Checkpoint,
    Dispute,
    DisputeItem,
    DisputeList,
    EvidenceCheck,
    Fingerprint,
    Report,
    ReportPage,
    RiskAnswer,
    UnexpectedAnswer,
)
from refund_ledger_client.proofs import Invalid as InvalidReceipt
from refund_ledger_client.voprf import InvalidProof
from refund_ledger_client.webhooks import InvalidWebhook, WebhookEvent, verify_webhook

if TYPE_CHECKING:
    from refund_ledger_client.evidence import fingerprint

__version__ = "0.1.0"

__all__ = [
    "NO_ANSWER",
    "ApiError",
    "AsyncLedgerClient",
    "AsyncRefundGate",
    "AttemptEvent",
    "AuthenticationError",
    "CallEvent",
    "Checkpoint",
    "Conflict",
    "DeadlineExceeded",
    "Decision",
    "Dispute",
    "DisputeItem",
    "DisputeList",
    "EvidenceCheck",
    "FieldError",
    "Fingerprint",
    "InvalidIdentifier",
    "InvalidProof",
    "InvalidReceipt",
    "InvalidWebhook",
    "Kind",
    "LedgerClient",
    "LedgerError",
    "LoggingObserver",
    "NotFound",
    "Observer",
    "PermissionDenied",
    "PseudonymKeyError",
    "RateLimited",
    "RefundGate",
    "Report",
    "ReportPage",
    "RetryPolicy",
    "RiskAnswer",
    "ServerError",
    "TransportError",
    "Unavailable",
    "UnexpectedAnswer",
    "UnusablePhoto",
    "ValidationError",
    "WebhookEvent",
    "fingerprint",
    "normalize",
    "oprf_input",
    "verify_webhook",
]


def __getattr__(name: str) -> Any:
    """``fingerprint`` on first use, so that the SDK imports without the photo
    libraries; without them it says which extra to install."""
    if name != "fingerprint":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        from refund_ledger_client.evidence import fingerprint  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError(
            "fingerprinting photos needs the photos extra: "
            f"pip install 'refund-ledger-client[photos]' ({exc.name} is missing)"
        ) from exc
    return fingerprint
