from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field
from pydantic.config import JsonDict

from api.schemas import EXAMPLE_HASH, example

CHECKPOINT_EXAMPLE: JsonDict = {
    "tree_size": 49000,
    "root_hash": EXAMPLE_HASH,
    "created_at": "2026-12-01T08:00:00Z",
    "key_id": "ck-2026-11-01",
    "note": "refund-ledger.example/audit\n49000\n"
    + EXAMPLE_HASH
    + "\n\n— refund-ledger.example/audit T2sa…\n",
    "cosignatures": [],
}


class CheckpointOut(BaseModel):
    model_config = example(CHECKPOINT_EXAMPLE)

    tree_size: int = Field(description="how many events the tree holds")
    root_hash: str = Field(description="the Merkle tree's root hash, base64 (RFC 9162)")
    created_at: dt.datetime = Field(description="when the ledger signed it")
    key_id: str = Field(description="the signing key (GET /v1/audit/keys)")
    note: str = Field(
        description="the signed checkpoint, C2SP signed-note format, with every witness's "
        "cosignature line after the ledger's signature"
    )
    cosignatures: list[str] = Field(
        default_factory=list, description="the witnesses' cosignature lines (C2SP tlog-cosignature)"
    )


class CheckpointList(BaseModel):
    model_config = example({"checkpoints": [CHECKPOINT_EXAMPLE], "next_cursor": None})

    checkpoints: list[CheckpointOut] = Field(description="signed checkpoints, newest first")
    next_cursor: str | None = Field(default=None, description="the next page; none when last")


class VerifierKey(BaseModel):
    key_id: str = Field(description="the key's id")
    verifier_key: str = Field(description="<name>+<hash>+<base64 key>, as in Go's note package")
    public_jwk: dict[str, str] = Field(description="the Ed25519 public key as a JWK (RFC 8037)")
    created_at: dt.datetime = Field(description="when it was made")
    retired_at: dt.datetime | None = Field(
        description="when it stopped signing; it still verifies what it signed"
    )


class VerifierKeys(BaseModel):
    model_config = example(
        {
            "origin": "refund-ledger.example/audit",
            "keys": [
                {
                    "key_id": "ck-2026-11-01",
                    "verifier_key": "refund-ledger.example/audit+4f2a9c1b+AXl0ZXN0a2V5Li4u",
                    "public_jwk": {
                        "kty": "OKP",
                        "crv": "Ed25519",
                        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                    },
                    "created_at": "2026-11-01T00:00:00Z",
                    "retired_at": None,
                }
            ],
        }
    )

    origin: str = Field(description="the log's origin line, the first line of each checkpoint")
    keys: list[VerifierKey] = Field(description="every checkpoint key, retired ones included")


class ConsistencyProofOut(BaseModel):
    model_config = example(
        {"old_size": 1000, "new_size": 1200, "proof": [EXAMPLE_HASH, EXAMPLE_HASH]}
    )

    old_size: int = Field(description="the older tree's size")
    new_size: int = Field(description="the newer tree's size")
    proof: list[str] = Field(description="base64 hashes, RFC 9162 §2.1.4")


class ReceiptOut(BaseModel):
    """Everything needed to check, offline, that an event is in a signed checkpoint."""

    model_config = example(
        {
            "event": {"id": 48214, "tag": "risk:subject:queried", "outcome": "success"},
            "canonical_event": "eyJpZCI6NDgyMTR9",
            "leaf_index": 48213,
            "leaf_hash": EXAMPLE_HASH,
            "tree_size": 49000,
            "inclusion_proof": [EXAMPLE_HASH],
            "checkpoint": CHECKPOINT_EXAMPLE["note"],
        }
    )

    event: dict[str, Any] = Field(description="the event, as it was hashed (docs/audit.md)")
    canonical_event: str = Field(description="base64 of the canonical bytes that were hashed")
    leaf_index: int = Field(description="the event's position in the tree, from 0")
    leaf_hash: str = Field(description="base64 of SHA-256(0x00 || canonical bytes)")
    tree_size: int = Field(description="the size of the tree the proof is against")
    inclusion_proof: list[str] = Field(description="base64 hashes, RFC 9162 §2.1.3")
    checkpoint: str = Field(description="the signed checkpoint note for tree_size")


class EventOut(BaseModel):
    event: dict[str, Any] = Field(description="the event, as it is hashed (docs/audit.md)")
    leaf_index: int | None = Field(description="its leaf in the tree; null until integrated")


class EventPage(BaseModel):
    model_config = example(
        {
            "events": [
                {
                    "event": {"id": 48214, "tag": "risk:subject:queried", "outcome": "success"},
                    "leaf_index": 48213,
                }
            ],
            "next_cursor": "ZXZlbnRzOjQ4MjE0",
        }
    )

    events: list[EventOut] = Field(description="matching events, newest first")
    next_cursor: str | None = Field(description="the next page's cursor; null on the last page")
