"""The member SDK: pseudonymize buyers, query risk, file and dispute reports, verify
audit receipts. See docs/sdk.md.

    from ledger.client import LedgerClient

    with LedgerClient(url, client_id, client_secret) as ledger:
        subject = ledger.pseudonymize("phone", "13800138000")
        answer = ledger.query_risk(subject, reference="refund-8841")
"""

from ledger.client._core import (
    LedgerApiError,
    PseudonymKeyError,
    RateLimitedError,
    RetryPolicy,
)
from ledger.client.client import AsyncLedgerClient, LedgerClient
from ledger.client.evidence import Fingerprint, UnusablePhoto, fingerprint
from ledger.client.identifiers import InvalidIdentifier, Kind, normalize, oprf_input
from ledger.client.proofs import Invalid as InvalidReceipt
from ledger.pseudonyms.voprf import InvalidProof

__all__ = [
    "AsyncLedgerClient",
    "Fingerprint",
    "InvalidIdentifier",
    "InvalidProof",
    "InvalidReceipt",
    "Kind",
    "LedgerApiError",
    "LedgerClient",
    "PseudonymKeyError",
    "RateLimitedError",
    "RetryPolicy",
    "UnusablePhoto",
    "fingerprint",
    "normalize",
    "oprf_input",
]
