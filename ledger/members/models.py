"""Members, client credentials and users."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ledger.access.permissions import Role
from ledger.db import Base
from ledger.types import UTCDateTime, uuid7


class MemberStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


def enum_column(cls: type[StrEnum], name: str, length: int = 16) -> sa.Enum:
    """A closed set of values stored as a string with a CHECK constraint."""
    return sa.Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        validate_strings=True,
        length=length,
        values_callable=lambda e: [m.value for m in e],
    )


class Member(Base):
    """A member platform. A suspended member's credentials are refused at once."""

    __tablename__ = "members"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid7)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)  # ASCII, for CLI and API
    display_name: Mapped[str] = mapped_column(sa.String(100))  # any script: 京东
    status: Mapped[MemberStatus] = mapped_column(enum_column(MemberStatus, "member_status"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Client(Base):
    """A client credential of a member: a public id, an argon2id secret hash, scopes.

    A member holds several at once so that it can rotate without downtime.
    """

    __tablename__ = "clients"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid7)
    client_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    member_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("members.id"), index=True)
    label: Mapped[str] = mapped_column(sa.String(100))
    scopes: Mapped[str] = mapped_column(sa.String(255))
    secret_hash: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class User(Base):
    """A human user of the console: an operator or an auditor."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid7)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    role: Mapped[Role] = mapped_column(enum_column(Role, "user_role"))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Set when someone else chose the password; the user must change it to go on.
    must_change_password: Mapped[bool] = mapped_column(
        sa.Boolean, server_default=sa.false(), default=False
    )
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The second factor (ledger/members/second_factor.py): TOTP secrets sealed with the
    # key in <key_dir>/second-factor (ledger/members/sealing.py).
    totp_secret: Mapped[str | None] = mapped_column(sa.String(255))
    totp_pending_secret: Mapped[str | None] = mapped_column(sa.String(255))
    totp_enabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)


class RecoveryCode(Base):
    """A one-time code that stands in for the TOTP code once: an argon2id hash, found by
    the code's short public prefix (``lookup``) so a sign-in verifies one hash, not ten."""

    __tablename__ = "recovery_codes"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "lookup", name="uq_recovery_codes_user_lookup"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid7)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    lookup: Mapped[str] = mapped_column(sa.String(8))
    code_hash: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
