"""Webhook endpoints and the delivery log (docs/corrections.md)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, Field
from pydantic.config import JsonDict, JsonValue

from api.schemas import Integer, RequestModel, example
from api.schemas.reports import NEXT_CURSOR
from ledger.webhooks.models import DeliveryState, EndpointState
from ledger.webhooks.outbox import SUBSCRIBABLE

EVENT_TYPES: list[JsonValue] = [t.value for t in SUBSCRIBABLE]
EventTypeName = Literal[
    "subject.assessment_changed", "dispute.opened", "dispute.deadline_near", "report.suspended"
]
EXAMPLE_ENDPOINT_ID = "01938f3b-77aa-7c10-9e2b-5d1f0a3c8e42"
ENDPOINT_EXAMPLE: JsonDict = {
    "id": EXAMPLE_ENDPOINT_ID,
    "url": "https://risk.example.com/ledger-events",
    "description": "refund review queue",
    "event_types": EVENT_TYPES,
    "state": "enabled",
    "max_in_flight": 4,
    "created_at": "2026-12-02T08:00:00Z",
    "failing_since": None,
    "last_success_at": "2026-12-02T09:14:03Z",
    "disabled_at": None,
    "disabled_reason": None,
    "previous_secret_until": None,
}
SECRET_EXAMPLE = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw6Y9pQ1xWc3E="  # noqa: S105


class EndpointIn(RequestModel):
    model_config = example(
        {
            "url": "https://risk.example.com/ledger-events",
            "event_types": EVENT_TYPES,
            "description": "refund review queue",
        }
    )

    url: str = Field(
        max_length=2048,
        description="your receiver: https:// (http:// only on loopback, for development)",
    )
    event_types: list[EventTypeName] = Field(
        min_length=1, max_length=len(EVENT_TYPES), description="the events to send there"
    )
    description: str = Field(default="", max_length=100, description="a name for people")
    max_in_flight: Integer = Field(
        default=4, ge=1, le=32, description="deliveries sent to it at once, at most"
    )


class EndpointOut(BaseModel):
    model_config = example(ENDPOINT_EXAMPLE)

    id: uuid.UUID = Field(description="the endpoint's id")
    url: str = Field(description="where events are sent")
    description: str = Field(description="a name for people")
    event_types: list[str] = Field(description="the events sent there")
    state: EndpointState = Field(
        description="enabled; or disabled (by you, or by the ledger after sustained failure)"
    )
    max_in_flight: int = Field(description="deliveries sent to it at once, at most")
    created_at: dt.datetime = Field(description="when it was added")
    failing_since: dt.datetime | None = Field(
        description="since when every attempt failed, if the last one did"
    )
    last_success_at: dt.datetime | None = Field(description="the last 2xx answer")
    disabled_at: dt.datetime | None = Field(description="when it was turned off")
    disabled_reason: str | None = Field(description="failing (by the ledger) or by_member (by you)")
    previous_secret_until: dt.datetime | None = Field(
        description="after a rotation: the old secret also signs until then"
    )


class EndpointWithSecret(BaseModel):
    model_config = example({"endpoint": ENDPOINT_EXAMPLE, "secret": SECRET_EXAMPLE})

    endpoint: EndpointOut = Field(description="the endpoint")
    secret: str = Field(
        description="the signing secret (Standard Webhooks, whsec_…): shown only now; keep it"
    )


class EndpointList(BaseModel):
    model_config = example({"endpoints": [ENDPOINT_EXAMPLE]})

    endpoints: list[EndpointOut] = Field(description="your endpoints, oldest first")


class EndpointStateIn(RequestModel):
    model_config = example({"state": "enabled"})

    state: EndpointState = Field(description="enabled (deliveries resume) or disabled (they wait)")


class PingOut(BaseModel):
    model_config = example({"event_id": "01938f3c-0000-7000-8000-00000000aa01"})

    event_id: uuid.UUID = Field(description="the webhook.ping event queued for the endpoint")


class ReplayIn(RequestModel):
    model_config = example({"since": "2026-12-01T00:00:00Z"})

    since: dt.datetime = Field(description="send again your events from this time on")
    event_types: list[EventTypeName] | None = Field(
        default=None, description="only these types (default: all)"
    )


class ReplayOut(BaseModel):
    model_config = example(
        {"replayed": 12, "last_event_id": "01938f3c-0000-7000-8000-00000000aa0c"}
    )

    replayed: int = Field(description="events queued again (at most 1000 per request)")
    last_event_id: uuid.UUID | None = Field(
        description="the newest one queued: replay again from its time for more"
    )


DELIVERY_EXAMPLE: JsonDict = {
    "id": "01938f3d-0000-7000-8000-00000000bb01",
    "event_id": "01938f3c-0000-7000-8000-00000000aa01",
    "webhook_id": "msg_01938f3c000070008000000000aa01",
    "endpoint_id": EXAMPLE_ENDPOINT_ID,
    "event_type": "subject.assessment_changed",
    "state": "pending",
    "attempts": 2,
    "created_at": "2026-12-02T09:00:00Z",
    "next_attempt_at": "2026-12-02T09:01:25Z",
    "last_status": 503,
    "last_error": None,
    "finished_at": None,
}


class DeliveryOut(BaseModel):
    model_config = example(DELIVERY_EXAMPLE)

    id: uuid.UUID = Field(description="the delivery's id")
    event_id: uuid.UUID = Field(description="the event delivered")
    webhook_id: str = Field(description="the webhook-id header: the same on every retry")
    endpoint_id: uuid.UUID = Field(description="where it goes")
    event_type: str = Field(description="the event's type")
    state: DeliveryState = Field(description="pending, sending, delivered or failed")
    attempts: int = Field(description="attempts so far")
    created_at: dt.datetime = Field(description="when it was queued")
    next_attempt_at: dt.datetime | None = Field(description="pending: when it is tried next")
    last_status: int | None = Field(description="the HTTP status of the last attempt")
    last_error: str | None = Field(
        description="the last attempt's failure without an answer (timeout, connect_failed …)"
    )
    finished_at: dt.datetime | None = Field(description="when it was delivered or given up")


class DeliveryList(BaseModel):
    model_config = example({"deliveries": [DELIVERY_EXAMPLE], "next_cursor": None})

    deliveries: list[DeliveryOut] = Field(description="newest first")
    next_cursor: str | None = Field(default=None, description=NEXT_CURSOR)
