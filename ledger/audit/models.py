"""The audit tables. The database refuses UPDATE and DELETE on the first four
(triggers made by the migration); only the sequencer's bookmark is mutable."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ledger.audit.events import StoredEvent
from ledger.db import Base
from ledger.types import UTCDateTime

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class AuditEventRow(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        sa.Index("ix_audit_events_member_id", "actor_member_id", "id"),
        sa.Index("ix_audit_events_subject_id", "subject", "id"),
        sa.Index("ix_audit_events_tag_id", "tag", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    tag: Mapped[str] = mapped_column(sa.String(64))
    actor_type: Mapped[str] = mapped_column(sa.String(16))
    actor_member_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    actor_client_id: Mapped[str | None] = mapped_column(sa.String(64))
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    subject: Mapped[str | None] = mapped_column(sa.String(64))
    purpose: Mapped[str | None] = mapped_column(sa.String(32))
    reference: Mapped[str | None] = mapped_column(sa.String(128))
    request_id: Mapped[str | None] = mapped_column(sa.String(128))
    outcome: Mapped[str] = mapped_column(sa.String(16))
    body: Mapped[str] = mapped_column(sa.Text)


class AuditLeaf(Base):
    """Leaf ``leaf_index`` of the tree is the event ``event_id``."""

    __tablename__ = "audit_leaves"

    leaf_index: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("audit_events.id"), unique=True
    )


class AuditNode(Base):
    """The hash of every perfect subtree: level 0 holds the leaf hashes."""

    __tablename__ = "audit_nodes"

    level: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32))


class AuditCheckpoint(Base):
    """A signed checkpoint (C2SP signed-note format; docs/audit.md)."""

    __tablename__ = "audit_checkpoints"

    tree_size: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[str] = mapped_column(sa.String(64))
    note: Mapped[str] = mapped_column(sa.Text)


class AuditCosignature(Base):
    """A witness's cosignature of a checkpoint (C2SP tlog-cosignature), as it sent it."""

    __tablename__ = "audit_cosignatures"

    tree_size: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    witness: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    line: Mapped[str] = mapped_column(sa.Text)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class VerificationRun(Base):
    """A whole-log verification run as a job (ledger/audit/runs.py): at most one is
    running, its progress written as it goes, its result kept."""

    __tablename__ = "verification_runs"
    __table_args__ = (
        sa.Index(
            "uq_verification_runs_one_running",
            "state",
            unique=True,
            postgresql_where=sa.text("state = 'running'"),
            sqlite_where=sa.text("state = 'running'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    state: Mapped[str] = mapped_column(sa.String(16))  # running, done, failed
    started_by: Mapped[str] = mapped_column(sa.String(100))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    checked: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    total: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    ok: Mapped[bool | None] = mapped_column(sa.Boolean)
    result: Mapped[str | None] = mapped_column(sa.Text)  # JSON: counts and problems
    audit_event_id: Mapped[int | None] = mapped_column(sa.BigInteger)


class AuditSequencerState(Base):
    """The sequencer's bookmark: every event with ``id <= floor_event_id`` is integrated.

    Mutable on purpose and not trusted: a wrong value can only make the sequencer scan
    more, or leave an event unintegrated, which ``ledger audit verify`` reports.
    """

    __tablename__ = "audit_sequencer"

    id: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, autoincrement=False)
    floor_event_id: Mapped[int] = mapped_column(sa.BigInteger)


# The columns a StoredEvent is made of, in its field order: StoredEvent(*row).
EVENT_COLUMNS = [AuditEventRow.__table__.c[name] for name in StoredEvent.__dataclass_fields__]
