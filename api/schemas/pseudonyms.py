"""Pseudonym evaluation: blinded elements in, evaluated elements and one proof out."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import RequestModel, example
from ledger.pseudonyms.service import MAX_ELEMENTS


class EvaluateIn(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"blinded_elements": ["5jT0c0x8yqJcR3vE0a1Gm6bq4Yh9nCzXo2d7fKsLwVI"]}]
        }
    )

    blinded_elements: list[str] = Field(
        min_length=1,
        max_length=MAX_ELEMENTS,
        description="RFC 9497 blinded elements (ristretto255), base64url without padding",
    )


class EvaluateOut(BaseModel):
    model_config = example(
        {
            "suite": "ristretto255-SHA512",
            "key_id": "pk-2026-11-01",
            "evaluated_elements": ["jL2w7r1Qk3m9Vx0cYb5nT8aZs4eHf6gDi2oKz_TuEw8"],
            "proof": (
                "Jc3k0mV9x2bQ7aT1nY5sL8fH4eG6dR0pW3zK9uI2oE1r"
                "B7vN5cX8mA4tZ6yS0qD2fJ9hL1kP3wU7gT5nM8bVw0"
            ),
        }
    )

    suite: str = Field(description="always ristretto255-SHA512 (RFC 9497 VOPRF, mode 0x01)")
    key_id: str = Field(description="the key that evaluated; see the published key")
    evaluated_elements: list[str] = Field(description="one per blinded element, in order")
    proof: str = Field(description="one DLEQ proof (c || s) for the whole batch, base64url")


class PseudonymKeyOut(BaseModel):
    model_config = example(
        {
            "suite": "ristretto255-SHA512",
            "mode": "VOPRF",
            "key_id": "pk-2026-11-01",
            "public_key": "4mT9x0cQ2bV7aL1nY5sK8fH3eG6dR0pW2zJ9uI4oE1s",
            "created_at": "2026-11-01T00:00:00+00:00",
        }
    )

    suite: str = Field(description="ristretto255-SHA512 (RFC 9497)")
    mode: str = Field(description="VOPRF (mode 0x01): every evaluation comes with a proof")
    key_id: str = Field(description="the key's id, as evaluations name it")
    public_key: str = Field(description="pkS, the ristretto255 element, base64url")
    created_at: str = Field(description="when the key was made (ISO 8601)")
