"""Reports, their append-only history, subjects' statements, and idempotency keys."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db import Base
from ledger.members.models import enum_column
from ledger.reports.policy import Basis, Category, State
from ledger.types import UTCDateTime, uuid7


class Report(Base):
    """A confirmed case. The payload columns are erased (set NULL) when it expires;
    ids, dates and the member stay as a tombstone."""

    __tablename__ = "reports"
    __table_args__ = (
        sa.UniqueConstraint("member_id", "case_ref", name="uq_reports_member_case_ref"),
        sa.Index("ix_reports_subject", "subject"),
        sa.Index("ix_reports_member_filed", "member_id", "filed_at"),
        # A member's list, filtered by status and paged by id (ledger/reports/queries.py).
        sa.Index("ix_reports_member_state_id", "member_id", "state", "id"),
        sa.Index("ix_reports_member_category_id", "member_id", "category", "id"),
        sa.Index("ix_reports_expires_at", "expires_at"),
        sa.CheckConstraint("amount_minor > 0", name="amount_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid7)
    member_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("members.id"))
    case_ref: Mapped[str | None] = mapped_column(sa.String(64))
    subject: Mapped[str | None] = mapped_column(sa.String(43))
    category: Mapped[Category] = mapped_column(enum_column(Category, "report_category", 24))
    basis: Mapped[Basis] = mapped_column(enum_column(Basis, "report_basis", 24))
    amount_minor: Mapped[int | None] = mapped_column(sa.BigInteger)
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    evidence: Mapped[str | None] = mapped_column(sa.Text)  # JSON list of SHA-256 hex digests
    fingerprint: Mapped[str | None] = mapped_column(sa.String(64))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    filed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    state: Mapped[State] = mapped_column(enum_column(State, "report_state", 16))
    state_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    audit_event_id: Mapped[int | None] = mapped_column(sa.BigInteger)


class ReportAction(Base):
    """What happened to a report after filing, one row per change, never updated."""

    __tablename__ = "report_actions"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid7)
    report_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("reports.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    reason: Mapped[str | None] = mapped_column(sa.String(64))
    evidence_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    dispute_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    member_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ReportStatement(Base):
    """The subject's own explanation (at most 200 characters), kept with the report."""

    __tablename__ = "report_statements"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid7)
    report_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("reports.id"), index=True)
    text: Mapped[str] = mapped_column(sa.String(200))
    via_member_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("members.id"))
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class IdempotencyKey(Base):
    """The answer to a batch, kept so that a retry with the same key gets it again."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.PrimaryKeyConstraint("member_id", "key", name="pk_idempotency_keys"),)

    member_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("members.id"))
    key: Mapped[str] = mapped_column(sa.String(128))
    request_sha256: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int] = mapped_column(sa.SmallInteger)
    response: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
