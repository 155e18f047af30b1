"""Webhook endpoints, the outbox of events, and their deliveries and attempts.

An event is written in the transaction of the change it reports (the transactional
outbox), with one delivery per subscribed endpoint; the delivery worker sends them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ledger.audit.models import BigId
from ledger.db import Base
from ledger.members.models import enum_column
from ledger.types import UTCDateTime, uuid7


class EndpointState(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"  # by the ledger after sustained failure, or by the member


class DeliveryState(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (``next_attempt_at``)
    SENDING = "sending"  # claimed by a worker until ``lease_until``
    DELIVERED = "delivered"  # the endpoint answered 2xx
    FAILED = "failed"  # given up after the retry period


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid7)
    member_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("members.id"), index=True)
    url: Mapped[str] = mapped_column(sa.String(2048))
    description: Mapped[str] = mapped_column(sa.String(100))
    event_types: Mapped[str] = mapped_column(sa.String(255))  # space-separated
    state: Mapped[EndpointState] = mapped_column(enum_column(EndpointState, "endpoint_state"))
    max_in_flight: Mapped[int] = mapped_column(sa.SmallInteger)
    # Sealed (ledger/members/sealing.py, the endpoint's id as associated data). During
    # a rotation the previous secret signs too, until ``previous_secret_until``.
    secret: Mapped[str] = mapped_column(sa.String(255))
    previous_secret: Mapped[str | None] = mapped_column(sa.String(255))
    previous_secret_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    failing_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(32))
    removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class WebhookEvent(Base):
    """One event for one member; its id is the ``webhook-id`` of every delivery of it."""

    __tablename__ = "webhook_events"
    __table_args__ = (sa.Index("ix_webhook_events_member_created", "member_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid7)
    member_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("members.id"))
    type: Mapped[str] = mapped_column(sa.String(64))
    payload: Mapped[str] = mapped_column(sa.Text)  # the exact JSON body that is signed
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        sa.Index("ix_webhook_deliveries_endpoint", "endpoint_id", "state"),
        sa.Index("ix_webhook_deliveries_event", "event_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid7)
    event_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("webhook_events.id"))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("webhook_endpoints.id"))
    state: Mapped[DeliveryState] = mapped_column(enum_column(DeliveryState, "delivery_state"))
    attempts: Mapped[int] = mapped_column(sa.SmallInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(sa.SmallInteger)
    last_error: Mapped[str | None] = mapped_column(sa.String(64))
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class WebhookAttempt(Base):
    """One try of a delivery: when, what came back, how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("webhook_deliveries.id"), index=True
    )
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[int | None] = mapped_column(sa.SmallInteger)
    error: Mapped[str | None] = mapped_column(sa.String(64))
    duration_ms: Mapped[int] = mapped_column(sa.Integer)
