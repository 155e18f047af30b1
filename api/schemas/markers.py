"""Protective markers (docs/corrections.md): placed, renewed and removed at a buyer's
request; shown with the risk answer and the evidence check."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field, Strict
from pydantic.config import JsonDict

from api.schemas import EXAMPLE_SUBJECT, Pseudonym, Reference, RequestModel, example
from ledger.markers.service import ADVICE, advice
from ledger.scoring.service import MarkerRow

MARKER_ID = "01938f40-1a2b-7c3d-8e4f-5a6b7c8d9e0f"
MARKER_EXAMPLE: JsonDict = {
    "id": MARKER_ID,
    "subject": EXAMPLE_SUBJECT,
    "kind": "identity_misused",
    "placed_at": "2026-12-02T09:00:00Z",
    "expires_at": "2028-12-01T09:00:00Z",
    "renewed_at": None,
    "removed_at": None,
    "in_force": True,
}
NOTICE_EXAMPLE: JsonDict = {
    "kind": "identity_misused",
    "placed_at": "2026-12-02T09:00:00Z",
    "expires_at": "2028-12-01T09:00:00Z",
    "advice": ADVICE,
}


class MarkerIn(RequestModel):
    """The buyer's request, through your platform, to mark their identity as misused."""

    model_config = example({"subject": EXAMPLE_SUBJECT, "reference": "ticket-77120"})

    subject: Pseudonym
    reference: Reference = Field(description="your ticket for the buyer's request")


class MarkerRemovalIn(RequestModel):
    model_config = example(
        {"subject": EXAMPLE_SUBJECT, "reference": "ticket-80311", "at_buyers_request": True}
    )

    subject: Pseudonym
    reference: Reference = Field(description="your ticket for the buyer's request")
    at_buyers_request: Annotated[bool, Strict()] = Field(
        description="true: the buyer asked for it themself (nobody else may)"
    )


class MarkerOut(BaseModel):
    model_config = example(MARKER_EXAMPLE)

    id: uuid.UUID = Field(description="the marker's id")
    subject: str = Field(description="the buyer's pseudonym")
    kind: Literal["identity_misused"] = Field(
        description="identity_misused: someone else used the buyer's identifier"
    )
    placed_at: dt.datetime = Field(description="when it was placed")
    expires_at: dt.datetime = Field(description="when it lapses unless renewed (2 years)")
    renewed_at: dt.datetime | None = Field(description="when it was last renewed")
    removed_at: dt.datetime | None = Field(description="when the buyer had it removed")
    in_force: bool = Field(description="placed, not removed, not lapsed")


def marker_notice(marker: MarkerRow | None, locale: str) -> MarkerNotice | None:
    """What an answer says of a protective marker in force, in the reader's language."""
    if marker is None:
        return None
    return MarkerNotice(
        kind=marker.kind,
        placed_at=marker.placed_at,
        expires_at=marker.expires_at,
        advice=advice(locale),
    )


class MarkerNotice(BaseModel):
    """A protective marker in force on the buyer, with what to do about it."""

    model_config = example(NOTICE_EXAMPLE)

    kind: str = Field(description="identity_misused")
    placed_at: dt.datetime = Field(description="when it was placed")
    expires_at: dt.datetime = Field(description="when it lapses unless renewed")
    advice: str = Field(description="verify the buyer's identity; not a finding against them")
