"""The transactional outbox: events written in the transaction of the change they
report, so that no change commits without its events and no event outlives a change
that rolled back. Each event is for one member and never names another; one delivery
row per subscribed endpoint waits for the delivery worker (ledger/webhooks/delivery.py).

Events (docs/corrections.md):

- ``subject.assessment_changed``: a report on a subject was withdrawn, suppressed,
  upheld after a dispute, or expired (and erased). Sent to every member that queried
  the subject within the correction window (30 days), found from the audit log, with
  the subject's new assessment and the member's own references for its queries.
- ``dispute.opened`` and ``dispute.deadline_near`` (3 days left): to the reporting
  member, naming only its own reports.
- ``report.suspended``: no notice recorded 30 days after filing, to the reporting member.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit.log import record
from ledger.audit.models import AuditEventRow
from ledger.audit.tags import Outcome, Tag
from ledger.context import Operation
from ledger.reports.policy import ReportPolicy
from ledger.scoring import policies
from ledger.scoring.service import SessionReports, assessment_of
from ledger.types import uuid7
from ledger.webhooks.models import (
    DeliveryState,
    EndpointState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)


class EventType(StrEnum):
    ASSESSMENT_CHANGED = "subject.assessment_changed"
    DISPUTE_OPENED = "dispute.opened"
    DISPUTE_DEADLINE_NEAR = "dispute.deadline_near"
    REPORT_SUSPENDED = "report.suspended"
    PING = "webhook.ping"  # sent on request, to test an endpoint


class Cause(StrEnum):
    """Why a subject's assessment changed."""

    WITHDRAWN = "withdrawn"  # by the reporting member (a dispute accepted, an error …)
    SUPPRESSED = "suppressed"  # a dispute went unanswered past its deadline
    UPHELD = "upheld"  # the reporting member re-checked it after a dispute
    EXPIRED = "expired"  # past its retention period, and erased


SUBSCRIBABLE = tuple(t for t in EventType if t is not EventType.PING)
MAX_REFERENCES = 20  # of a member's own queries, newest first, in a correction


def iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def envelope(event_type: EventType, data: Mapping[str, Any], now: dt.datetime) -> str:
    """The body that is signed and sent (Standard Webhooks: type, timestamp, data)."""
    document = {"type": event_type.value, "timestamp": iso(now), "data": data}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


async def emit(
    session: AsyncSession,
    member_id: uuid.UUID,
    event_type: EventType,
    data: Mapping[str, Any],
    *,
    now: dt.datetime,
    only_endpoint: uuid.UUID | None = None,
) -> WebhookEvent:
    """Add an event for ``member_id`` to the caller's transaction, with a delivery to
    each of its enabled endpoints that subscribed to the type."""
    event = WebhookEvent(
        id=uuid7(),
        member_id=member_id,
        type=event_type.value,
        payload=envelope(event_type, data, now),
        created_at=now,
    )
    session.add(event)
    await session.flush()  # the deliveries refer to it
    query = sa.select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
        WebhookEndpoint.member_id == member_id,
        WebhookEndpoint.state == EndpointState.ENABLED,
        WebhookEndpoint.removed_at.is_(None),
    )
    if only_endpoint is not None:
        query = query.where(WebhookEndpoint.id == only_endpoint)
    for endpoint_id, types in await session.execute(query):
        if only_endpoint is not None or event_type.value in types.split():
            session.add(deliver(event.id, endpoint_id, now))
    return event


def deliver(event_id: uuid.UUID, endpoint_id: uuid.UUID, now: dt.datetime) -> WebhookDelivery:
    """A new delivery of an event to an endpoint, due now."""
    return WebhookDelivery(
        id=uuid7(),
        event_id=event_id,
        endpoint_id=endpoint_id,
        state=DeliveryState.PENDING,
        attempts=0,
        created_at=now,
        next_attempt_at=now,
    )


_QUERIED = (Tag.RISK_QUERIED.value, Tag.EVIDENCE_CHECKED.value)


async def recent_askers(
    session: AsyncSession, subject: str, since: dt.datetime
) -> dict[uuid.UUID, tuple[dt.datetime, list[str]]]:
    """Each member that queried ``subject`` since ``since``: when it last did, and its
    own references for those queries (newest first, at most ``MAX_REFERENCES``).
    Read from the audit log, on its (subject, id) index."""
    asked = AuditEventRow
    recent = (
        asked.subject == subject,
        asked.tag.in_(_QUERIED),
        asked.outcome == Outcome.SUCCESS.value,
        asked.recorded_at >= since,
        asked.actor_member_id.is_not(None),
    )
    members = await session.execute(
        sa.select(asked.actor_member_id, sa.func.max(asked.recorded_at))
        .where(*recent)
        .group_by(asked.actor_member_id)
    )
    found: dict[uuid.UUID, tuple[dt.datetime, list[str]]] = {}
    for member_id, last in members:
        assert member_id is not None
        references = await session.scalars(
            sa.select(asked.reference)
            .where(*recent, asked.actor_member_id == member_id, asked.reference.is_not(None))
            .order_by(asked.id.desc())
            .limit(MAX_REFERENCES)
        )
        found[member_id] = (last, list(dict.fromkeys(r for r in references if r)))
    return found


async def assessment_changed(
    session: AsyncSession,
    op: Operation,
    subjects: Sequence[str],
    cause: Cause,
    *,
    policy: ReportPolicy,
) -> int:
    """Queue ``subject.assessment_changed`` for every member that queried each of
    ``subjects`` within the correction window, with the assessment as it is now (the
    change is already flushed). Audited once per subject; the number of members told."""
    told = 0
    scoring = None
    for subject in dict.fromkeys(subjects):
        askers = await recent_askers(session, subject, op.now - policy.correction_window)
        if not askers:
            continue
        if scoring is None:
            scoring = await policies.active(session)
        assessment = await assessment_of(
            SessionReports(session), subject, now=op.now, report_policy=policy, policy=scoring
        )
        for member_id, (last, references) in askers.items():
            data = {
                "subject": subject,
                "cause": cause.value,
                "changed_at": iso(op.now),
                "assessment": {
                    "score": assessment.score,
                    "band": assessment.band.value,
                    "recommendation": assessment.recommendation.value,
                    "policy_version": assessment.policy_version,
                    "active_reports": assessment.counts.active_reports,
                    "open_disputes": assessment.counts.open_disputes,
                },
                "your_queries": {"last_at": iso(last), "references": references},
            }
            await emit(session, member_id, EventType.ASSESSMENT_CHANGED, data, now=op.now)
        told += len(askers)
        await record(
            session,
            op.event(
                Tag.CORRECTION_QUEUED,
                subject=subject,
                body={"cause": cause.value, "members": len(askers)},
            ),
            now=op.now,
        )
    return told


KEEP_EVENTS = dt.timedelta(days=30)  # replayable this long; every retry ends before


async def purge_old(session: AsyncSession, now: dt.datetime, *, limit: int = 10_000) -> int:
    """Delete events older than ``KEEP_EVENTS`` whose deliveries have all ended, with
    their deliveries and attempts: the outbox does not grow without end."""
    # A delivery still waiting keeps its event, unless it is older than any retry
    # (its endpoint was turned off and never on again); a replay is a new delivery.
    waiting = sa.exists().where(
        WebhookDelivery.event_id == WebhookEvent.id,
        WebhookDelivery.state.in_([DeliveryState.PENDING, DeliveryState.SENDING]),
        WebhookDelivery.created_at >= now - KEEP_EVENTS,
    )
    old = list(
        await session.scalars(
            sa.select(WebhookEvent.id)
            .where(WebhookEvent.created_at < now - KEEP_EVENTS, ~waiting)
            .order_by(WebhookEvent.created_at)
            .limit(limit)
        )
    )
    if not old:
        return 0
    deliveries = sa.select(WebhookDelivery.id).where(WebhookDelivery.event_id.in_(old))
    await session.execute(
        sa.delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries))
    )
    await session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.event_id.in_(old)))
    await session.execute(sa.delete(WebhookEvent).where(WebhookEvent.id.in_(old)))
    return len(old)
