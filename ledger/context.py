"""Who is doing an operation, when, and under which request: what every audit entry
made by the operation carries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from ledger.audit.events import Actor, AuditEvent, JsonValue
from ledger.audit.tags import Outcome, Tag


@dataclass(frozen=True, slots=True)
class Operation:
    actor: Actor
    now: dt.datetime
    request_id: str | None = None

    @classmethod
    def system(cls, now: dt.datetime) -> Operation:
        """An operation of the `ledger` command or a background job."""
        return cls(actor=Actor.system(), now=now)

    def event(
        self,
        tag: Tag,
        *,
        outcome: Outcome = Outcome.SUCCESS,
        subject: str | None = None,
        purpose: str | None = None,
        reference: str | None = None,
        body: Mapping[str, JsonValue] | None = None,
    ) -> AuditEvent:
        return AuditEvent(
            tag=tag,
            actor=self.actor,
            outcome=outcome,
            subject=subject,
            purpose=purpose,
            reference=reference,
            request_id=self.request_id,
            body=body or {},
        )
