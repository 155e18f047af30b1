"""Pseudonym evaluation: blinded elements in, evaluated elements and one proof out."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas import RequestModel
from ledger.pseudonyms.service import MAX_ELEMENTS


class EvaluateIn(RequestModel):
    blinded_elements: list[str] = Field(
        min_length=1,
        max_length=MAX_ELEMENTS,
        description="RFC 9497 blinded elements (ristretto255), base64url without padding",
    )


class EvaluateOut(BaseModel):
    suite: str = Field(description="always ristretto255-SHA512 (RFC 9497 VOPRF, mode 0x01)")
    key_id: str = Field(description="the key that evaluated; see the published key")
    evaluated_elements: list[str] = Field(description="one per blinded element, in order")
    proof: str = Field(description="one DLEQ proof (c || s) for the whole batch, base64url")


class PseudonymKeyOut(BaseModel):
    suite: str
    mode: str
    key_id: str
    public_key: str = Field(description="pkS, the ristretto255 element, base64url")
    created_at: str
