from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class CheckpointOut(BaseModel):
    tree_size: int
    root_hash: str = Field(description="base64")
    created_at: dt.datetime
    key_id: str
    note: str = Field(
        description="the signed checkpoint, C2SP signed-note format, with every witness's "
        "cosignature line after the ledger's signature"
    )
    cosignatures: list[str] = Field(
        default_factory=list, description="the witnesses' cosignature lines (C2SP tlog-cosignature)"
    )


class CheckpointList(BaseModel):
    checkpoints: list[CheckpointOut]
    next_cursor: str | None = Field(default=None, description="the next page; none when last")


class VerifierKey(BaseModel):
    key_id: str
    verifier_key: str = Field(description="<name>+<hash>+<base64 key>, as in Go's note package")
    public_jwk: dict[str, str]
    created_at: dt.datetime
    retired_at: dt.datetime | None


class VerifierKeys(BaseModel):
    origin: str
    keys: list[VerifierKey]


class ConsistencyProofOut(BaseModel):
    old_size: int
    new_size: int
    proof: list[str] = Field(description="base64 hashes, RFC 9162 §2.1.4")


class ReceiptOut(BaseModel):
    """Everything needed to check, offline, that an event is in a signed checkpoint."""

    event: dict[str, Any]
    canonical_event: str = Field(description="base64 of the canonical bytes that were hashed")
    leaf_index: int
    leaf_hash: str = Field(description="base64 of SHA-256(0x00 || canonical bytes)")
    tree_size: int
    inclusion_proof: list[str] = Field(description="base64 hashes, RFC 9162 §2.1.3")
    checkpoint: str = Field(description="the signed checkpoint note for tree_size")


class EventOut(BaseModel):
    event: dict[str, Any]
    leaf_index: int | None


class EventPage(BaseModel):
    events: list[EventOut]
    next_cursor: str | None
