"""Every model, imported once so that ``metadata`` is complete (alembic reads it)."""

from ledger.audit.models import (
    AuditCheckpoint,
    AuditCosignature,
    AuditEventRow,
    AuditLeaf,
    AuditNode,
    AuditSequencerState,
)
from ledger.console.models import ConsoleSession
from ledger.db import Base
from ledger.disputes.models import Dispute, DisputeItem
from ledger.evidence.models import EvidencePhoto, ListingPhoto
from ledger.markers.models import ProtectiveMarker
from ledger.members.models import Client, Member, User
from ledger.rate_limits import RateCounter
from ledger.reports.models import IdempotencyKey, Report, ReportAction, ReportStatement
from ledger.scoring.policies import StoredPolicy
from ledger.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

metadata = Base.metadata

__all__ = [
    "AuditCheckpoint",
    "AuditCosignature",
    "AuditEventRow",
    "AuditLeaf",
    "AuditNode",
    "AuditSequencerState",
    "Client",
    "ConsoleSession",
    "Dispute",
    "DisputeItem",
    "EvidencePhoto",
    "IdempotencyKey",
    "ListingPhoto",
    "Member",
    "ProtectiveMarker",
    "RateCounter",
    "Report",
    "ReportAction",
    "ReportStatement",
    "StoredPolicy",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "metadata",
]
