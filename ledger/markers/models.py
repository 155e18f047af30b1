"""Protective markers on a subject's pseudonym, placed at the buyer's request."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db import Base
from ledger.members.models import enum_column
from ledger.types import UTCDateTime, uuid7


class MarkerKind(StrEnum):
    IDENTITY_MISUSED = "identity_misused"  # someone else used the buyer's identifier


class ProtectiveMarker(Base):
    __tablename__ = "protective_markers"
    __table_args__ = (sa.Index("ix_protective_markers_subject", "subject", "removed_at"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid7)
    subject: Mapped[str] = mapped_column(sa.String(43))
    kind: Mapped[MarkerKind] = mapped_column(enum_column(MarkerKind, "marker_kind", 32))
    placed_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("members.id"))
    reference: Mapped[str] = mapped_column(sa.String(128))  # the member's own ticket
    placed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    renewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    removed_by: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
