"""Disputes and their items: one item per disputed report, routed to its member."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db import Base
from ledger.members.models import enum_column
from ledger.types import UTCDateTime, uuid7


class Resolution(StrEnum):
    OPEN = "open"  # waiting for the reporting member
    UPHELD = "upheld"  # the member re-checked and stands by it, with new evidence
    WITHDRAWN = "withdrawn"  # the member withdrew the report
    UNVERIFIABLE = "unverifiable"  # no answer by the deadline: the report is suppressed


class Dispute(Base):
    __tablename__ = "disputes"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid7)
    subject: Mapped[str | None] = mapped_column(sa.String(43), index=True)
    opened_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("members.id"))
    reference: Mapped[str] = mapped_column(sa.String(128))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    deadline: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class DisputeItem(Base):
    __tablename__ = "dispute_items"
    __table_args__ = (
        sa.PrimaryKeyConstraint("dispute_id", "report_id", name="pk_dispute_items"),
        sa.Index("ix_dispute_items_assignee", "reporting_member_id", "resolution"),
        sa.Index("ix_dispute_items_report", "report_id"),
        sa.Index("ix_dispute_items_resolution", "resolution", "resolved_at"),
    )

    dispute_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("disputes.id"))
    report_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("reports.id"))
    reporting_member_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("members.id"))
    resolution: Mapped[Resolution] = mapped_column(
        enum_column(Resolution, "dispute_resolution", 16)
    )
    reason_code: Mapped[str | None] = mapped_column(sa.String(64))
    evidence_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # deadline_near sent
