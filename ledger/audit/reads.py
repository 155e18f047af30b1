"""Reads are recorded by the core function that performs them.

Writes record their audit event in their own transaction (``ledger.audit.log.record``).
A read has no transaction to share, so it records through the group-commit writer,
durably, before its answer is returned: a read whose event could not be written raises
``Unavailable`` and is not answered. The function that reads takes a ``Recorder`` (the
operation: who, when, under which request; and the writer) and returns what it read
together with the event's id (``Audited``). Routers and console pages build the
recorder and call the function; they write no events themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from ledger.audit.events import JsonValue
from ledger.audit.log import AuditWriter
from ledger.audit.tags import Outcome, Tag
from ledger.context import Operation

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Audited(Generic[T]):
    """What a read returned, and the id of the audit event that records it."""

    value: T
    audit_event_id: int


@dataclass(frozen=True, slots=True)
class Recorder:
    op: Operation
    writer: AuditWriter

    async def record(
        self,
        tag: Tag,
        *,
        outcome: Outcome = Outcome.SUCCESS,
        subject: str | None = None,
        purpose: str | None = None,
        reference: str | None = None,
        body: Mapping[str, JsonValue] | None = None,
    ) -> int:
        """Write one event durably; its id."""
        return await self.writer.write(
            self.op.event(
                tag,
                outcome=outcome,
                subject=subject,
                purpose=purpose,
                reference=reference,
                body=body,
            )
        )

    async def refused(self, tag: Tag, **body: JsonValue) -> int:
        """Record a refusal: what was asked and why, never the refused values."""
        return await self.record(tag, outcome=Outcome.REFUSED, body=body)
