"""Stored fingerprints: of the photos behind reports, and of members' listing photos.

``fingerprint`` is always the keyed transform of the PDQ hash (ledger/evidence/keys.py),
never the raw hash. A report's photos are deleted with the report's payload at
retention; a listing photo is withdrawn (kept, marked) and stops matching at once.
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ledger.audit.models import BigId
from ledger.db import Base
from ledger.types import UTCDateTime


class EvidencePhoto(Base):
    __tablename__ = "evidence_photos"
    # Ids are never given twice, even on SQLite (each server's index reads by id).
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012  (SQLAlchemy's form)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    report_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("reports.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("members.id"))
    fingerprint: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    quality: Mapped[int] = mapped_column(sa.SmallInteger)
    provenance: Mapped[str] = mapped_column(sa.Text)  # JSON list of verdict codes
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ListingPhoto(Base):
    __tablename__ = "listing_photos"
    __table_args__ = (
        sa.UniqueConstraint(
            "member_id", "reference", "fingerprint", name="uq_listing_photos_member_ref_fp"
        ),
        sa.Index("ix_listing_photos_member_reference", "member_id", "reference"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    member_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("members.id"))
    reference: Mapped[str] = mapped_column(sa.String(128))
    fingerprint: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    quality: Mapped[int] = mapped_column(sa.SmallInteger)
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
