"""Every model, imported once so that ``metadata`` is complete (alembic reads it)."""

from ledger.audit.models import (
    AuditCheckpoint,
    AuditEventRow,
    AuditLeaf,
    AuditNode,
    AuditSequencerState,
)
from ledger.db import Base
from ledger.members.models import Client, Member, User

metadata = Base.metadata

__all__ = [
    "AuditCheckpoint",
    "AuditEventRow",
    "AuditLeaf",
    "AuditNode",
    "AuditSequencerState",
    "Client",
    "Member",
    "User",
    "metadata",
]
