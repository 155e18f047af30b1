"""Audit events and their canonical bytes.

The canonical form of an event (documented in docs/audit.md) is what the Merkle tree
commits to. It is JSON with a fixed set of members, keys sorted, no whitespace, every
non-ASCII character escaped (so the bytes are ASCII), integers only, UUIDs in lower-case
hyphenated form and times as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``. It is computed from the
stored row, so it is the same whichever database and Python version read it.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger.audit.tags import ActorType, Outcome, Tag
from ledger.errors import InvalidInput

CANONICAL_VERSION = 1
MAX_BODY_BYTES = 4096

JsonValue = str | int | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


@dataclass(frozen=True, slots=True)
class Actor:
    type: ActorType
    member_id: uuid.UUID | None = None
    client_id: str | None = None
    user_id: uuid.UUID | None = None

    @classmethod
    def client(cls, member_id: uuid.UUID, client_id: str) -> Actor:
        return cls(ActorType.CLIENT, member_id=member_id, client_id=client_id)

    @classmethod
    def user(cls, user_id: uuid.UUID) -> Actor:
        return cls(ActorType.USER, user_id=user_id)

    @classmethod
    def system(cls) -> Actor:
        return cls(ActorType.SYSTEM)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """An event to record. ``subject`` is a pseudonym, never a raw identifier."""

    tag: Tag
    actor: Actor
    outcome: Outcome = Outcome.SUCCESS
    subject: str | None = None
    purpose: str | None = None
    reference: str | None = None
    request_id: str | None = None
    body: Mapping[str, JsonValue] = field(default_factory=dict)

    def body_json(self) -> str:
        """The body as canonical JSON text; refuses floats and oversized bodies."""
        _check_json(self.body)
        text = _dumps(dict(self.body))
        if len(text) > MAX_BODY_BYTES:
            raise InvalidInput(f"an audit event body is at most {MAX_BODY_BYTES} bytes")
        return text


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as stored: everything the canonical form is made of."""

    id: int
    recorded_at: dt.datetime
    tag: str
    actor_type: str
    actor_member_id: uuid.UUID | None
    actor_client_id: str | None
    actor_user_id: uuid.UUID | None
    subject: str | None
    purpose: str | None
    reference: str | None
    request_id: str | None
    outcome: str
    body: str

    def canonical(self) -> dict[str, Any]:
        return {
            "v": CANONICAL_VERSION,
            "id": self.id,
            "time": format_time(self.recorded_at),
            "tag": self.tag,
            "actor": {
                "type": self.actor_type,
                "member_id": _uuid(self.actor_member_id),
                "client_id": self.actor_client_id,
                "user_id": _uuid(self.actor_user_id),
            },
            "subject": self.subject,
            "purpose": self.purpose,
            "reference": self.reference,
            "request_id": self.request_id,
            "outcome": self.outcome,
            "body": json.loads(self.body),
        }

    def canonical_bytes(self) -> bytes:
        return _dumps(self.canonical()).encode("ascii")


def format_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _uuid(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


_SCALARS = frozenset({str, int, bool, type(None)})


def _check_json(value: object) -> None:
    # Exact types first: this runs for every audit event, and isinstance() against a
    # union or an ABC costs several times a set lookup.
    if type(value) in _SCALARS:
        return
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise InvalidInput("audit event body keys must be strings")
            _check_json(item)
        return
    if isinstance(value, bool | int | str):
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_json(item)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput("audit event body keys must be strings")
            _check_json(item)
        return
    raise InvalidInput(
        f"audit event bodies hold strings, integers, booleans: not {type(value).__name__}"
    )
