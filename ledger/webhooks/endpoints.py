"""Members' webhook endpoints: registered, listed, rotated, turned off and on, removed;
and the delivery log a member reads and replays from.

The caller has checked the permission (a client holding ``webhooks:manage`` acts on its
own member; an operator on the member it names; the `ledger` command as the system).
A secret is returned once, when made; it is kept sealed, since signing needs it.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger import pagination
from ledger.audit.log import record
from ledger.audit.reads import Audited, Recorder
from ledger.audit.tags import Tag
from ledger.context import Operation
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.members.sealing import SealingKey
from ledger.types import uuid7
from ledger.webhooks import outbox
from ledger.webhooks.models import (
    DeliveryState,
    EndpointState,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

MAX_ENDPOINTS = 10  # per member
ROTATION_OVERLAP = dt.timedelta(hours=24)  # the previous secret keeps signing this long
MAX_REPLAY = 1000  # events per replay request; ask again from the last one for more
SECRET_PREFIX = "whsec_"  # noqa: S105  (the format's prefix, not a secret)


@dataclass(frozen=True, slots=True)
class EndpointView:
    id: uuid.UUID
    url: str
    description: str
    event_types: tuple[str, ...]
    state: EndpointState
    max_in_flight: int
    created_at: dt.datetime
    failing_since: dt.datetime | None
    last_success_at: dt.datetime | None
    disabled_at: dt.datetime | None
    disabled_reason: str | None
    previous_secret_until: dt.datetime | None


@dataclass(frozen=True, slots=True)
class NewSecret:
    endpoint: EndpointView
    secret: str  # shown once


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: uuid.UUID
    event_id: uuid.UUID
    endpoint_id: uuid.UUID
    event_type: str
    state: DeliveryState
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None
    last_status: int | None
    last_error: str | None
    finished_at: dt.datetime | None

    @property
    def webhook_id(self) -> str:
        """The ``webhook-id`` header of every attempt of this event."""
        return message_id(self.event_id)


def message_id(event_id: uuid.UUID) -> str:
    return f"msg_{event_id.hex}"


def generate_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode("ascii")


def view_of(e: WebhookEndpoint) -> EndpointView:
    return EndpointView(
        id=e.id,
        url=e.url,
        description=e.description,
        event_types=tuple(e.event_types.split()),
        state=e.state,
        max_in_flight=e.max_in_flight,
        created_at=e.created_at,
        failing_since=e.failing_since,
        last_success_at=e.last_success_at,
        disabled_at=e.disabled_at,
        disabled_reason=e.disabled_reason,
        previous_secret_until=e.previous_secret_until,
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, allow_loopback_http: bool) -> str:
    """An endpoint URL: HTTPS to a public name or address; plain HTTP only on loopback,
    where the operator allows it (development)."""
    problem = "url is an https:// URL of your receiver (http:// only on loopback, for development)"
    if len(url) > 2048 or any(c.isspace() for c in url):
        raise InvalidInput(problem, fields=("url",))
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018  (a bad port raises here)
    except ValueError:
        raise InvalidInput(problem, fields=("url",)) from None
    if parts.username or parts.password or parts.fragment or not host:
        raise InvalidInput(problem + "; no user, password or #fragment", fields=("url",))
    if parts.scheme == "http":
        if _loopback(host) and allow_loopback_http:
            return url
        raise InvalidInput(problem, fields=("url",))
    if parts.scheme != "https":
        raise InvalidInput(problem, fields=("url",))
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return url
    if not address.is_global:
        raise InvalidInput(
            "url must not point at a private, loopback or link-local address over https",
            fields=("url",),
        )
    return url


def check_event_types(types: list[str]) -> str:
    known = [t.value for t in outbox.SUBSCRIBABLE]
    unknown = sorted(set(types) - set(known))
    if unknown or not types:
        raise InvalidInput(
            "event_types is a non-empty list of: " + ", ".join(known), fields=("event_types",)
        )
    return " ".join(t for t in known if t in types)


async def add(
    session: AsyncSession,
    op: Operation,
    key: SealingKey,
    member_id: uuid.UUID,
    *,
    url: str,
    event_types: list[str],
    description: str = "",
    max_in_flight: int = 4,
    allow_loopback_http: bool = False,
) -> NewSecret:
    """Register an endpoint; its signing secret is returned once."""
    url = check_url(url, allow_loopback_http=allow_loopback_http)
    types = check_event_types(event_types)
    if len(description) > 100:
        raise InvalidInput("description is at most 100 characters", fields=("description",))
    if not 1 <= max_in_flight <= 32:
        raise InvalidInput("max_in_flight is 1 to 32", fields=("max_in_flight",))
    count = await session.scalar(
        sa.select(sa.func.count()).where(
            WebhookEndpoint.member_id == member_id, WebhookEndpoint.removed_at.is_(None)
        )
    )
    if (count or 0) >= MAX_ENDPOINTS:
        raise Conflict(f"a member has at most {MAX_ENDPOINTS} endpoints; remove one first")
    secret = generate_secret()
    endpoint = WebhookEndpoint(
        id=uuid7(),
        member_id=member_id,
        url=url,
        description=description,
        event_types=types,
        state=EndpointState.ENABLED,
        max_in_flight=max_in_flight,
        created_at=op.now,
        secret="",
    )
    endpoint.secret = key.seal(endpoint.id, secret.encode("ascii"))
    session.add(endpoint)
    await _audit(session, op, Tag.WEBHOOK_ENDPOINT_ADDED, endpoint, types=types)
    return NewSecret(view_of(endpoint), secret)


async def _audit(
    session: AsyncSession, op: Operation, tag: Tag, endpoint: WebhookEndpoint, **more: str
) -> None:
    # The URL's host only: a path may hold a member's own token.
    host = urlsplit(endpoint.url).hostname or ""
    body = {"endpoint_id": str(endpoint.id), "member_id": str(endpoint.member_id), "host": host}
    await record(session, op.event(tag, body=body | more), now=op.now)


async def _own(
    session: AsyncSession, member_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if endpoint is None or endpoint.member_id != member_id or endpoint.removed_at is not None:
        raise NotFound("no such endpoint of yours")
    return endpoint


async def of_member(session: AsyncSession, member_id: uuid.UUID) -> list[EndpointView]:
    """The member's endpoints (at most ``MAX_ENDPOINTS``), oldest first."""
    rows = await session.scalars(
        sa.select(WebhookEndpoint)
        .where(WebhookEndpoint.member_id == member_id, WebhookEndpoint.removed_at.is_(None))
        .order_by(WebhookEndpoint.created_at)
    )
    return [view_of(e) for e in rows]


async def listed(
    session: AsyncSession, rec: Recorder, member_id: uuid.UUID
) -> Audited[list[EndpointView]]:
    """The member's endpoints, as the member reads them. Recorded."""
    found = await of_member(session, member_id)
    event_id = await rec.record(
        Tag.WEBHOOK_ENDPOINTS_LISTED, body={"member_id": str(member_id), "count": len(found)}
    )
    return Audited(found, event_id)


async def rotate(
    session: AsyncSession,
    op: Operation,
    key: SealingKey,
    member_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    overlap: dt.timedelta = ROTATION_OVERLAP,
) -> NewSecret:
    """A new secret, returned once. Until ``overlap`` has passed, every delivery is
    signed with both (Standard Webhooks sends several signatures), so the receiver can
    switch to the new one without missing an event."""
    endpoint = await _own(session, member_id, endpoint_id)
    secret = generate_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = op.now + overlap
    endpoint.secret = key.seal(endpoint.id, secret.encode("ascii"))
    await _audit(session, op, Tag.WEBHOOK_ENDPOINT_ROTATED, endpoint)
    return NewSecret(view_of(endpoint), secret)


async def remove(
    session: AsyncSession, op: Operation, member_id: uuid.UUID, endpoint_id: uuid.UUID
) -> None:
    """Remove an endpoint: nothing more is sent to it (its delivery log stays)."""
    endpoint = await _own(session, member_id, endpoint_id)
    endpoint.removed_at = op.now
    endpoint.state = EndpointState.DISABLED
    endpoint.disabled_at = endpoint.disabled_at or op.now
    endpoint.disabled_reason = endpoint.disabled_reason or "removed"
    await _stop_pending(session, endpoint.id, op.now)
    await _audit(session, op, Tag.WEBHOOK_ENDPOINT_REMOVED, endpoint)


async def _stop_pending(session: AsyncSession, endpoint_id: uuid.UUID, now: dt.datetime) -> None:
    await session.execute(
        sa.update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.state == DeliveryState.PENDING,
        )
        .values(state=DeliveryState.FAILED, last_error="endpoint_removed", finished_at=now)
    )


async def set_enabled(
    session: AsyncSession,
    op: Operation,
    member_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    enabled: bool,
) -> EndpointView:
    """Turn an endpoint off (deliveries wait) or back on (they resume, and a member may
    replay what it missed)."""
    endpoint = await _own(session, member_id, endpoint_id)
    wanted = EndpointState.ENABLED if enabled else EndpointState.DISABLED
    if endpoint.state is wanted:
        raise Conflict(f"the endpoint is already {wanted.value}", current_state=wanted.value)
    endpoint.state = wanted
    if enabled:
        endpoint.disabled_at = endpoint.disabled_reason = endpoint.failing_since = None
        tag = Tag.WEBHOOK_ENDPOINT_ENABLED
    else:
        endpoint.disabled_at, endpoint.disabled_reason = op.now, "by_member"
        tag = Tag.WEBHOOK_ENDPOINT_DISABLED
    await _audit(session, op, tag, endpoint)
    return view_of(endpoint)


async def ping(
    session: AsyncSession, op: Operation, member_id: uuid.UUID, endpoint_id: uuid.UUID
) -> uuid.UUID:
    """Queue a ``webhook.ping`` to one endpoint (to test a receiver); the event's id."""
    endpoint = await _own(session, member_id, endpoint_id)
    if endpoint.state is not EndpointState.ENABLED:
        raise Conflict("the endpoint is disabled; enable it first", current_state="disabled")
    event = await outbox.emit(
        session,
        member_id,
        outbox.EventType.PING,
        {"endpoint_id": str(endpoint.id)},
        now=op.now,
        only_endpoint=endpoint.id,
    )
    return event.id


async def deliveries(
    session: AsyncSession,
    rec: Recorder,
    member_id: uuid.UUID,
    *,
    endpoint_id: uuid.UUID | None = None,
    state: DeliveryState | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> Audited[tuple[list[DeliveryView], str | None]]:
    """The member's delivery log as the member reads it. Recorded."""
    page = await delivery_page(
        session, member_id, endpoint_id=endpoint_id, state=state, cursor=cursor, limit=limit
    )
    event_id = await rec.record(
        Tag.WEBHOOK_DELIVERIES_LISTED, body={"member_id": str(member_id), "count": len(page[0])}
    )
    return Audited(page, event_id)


async def delivery_page(
    session: AsyncSession,
    member_id: uuid.UUID,
    *,
    endpoint_id: uuid.UUID | None = None,
    state: DeliveryState | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[DeliveryView], str | None]:
    """The member's delivery log, newest first; a page and the cursor of the next."""
    query = (
        sa.select(WebhookDelivery, WebhookEvent.type)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(WebhookEvent.member_id == member_id)
        .order_by(WebhookDelivery.id.desc())
    )
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    if state is not None:
        query = query.where(WebhookDelivery.state == state)
    if cursor is not None:
        (after,) = pagination.decode(cursor, "deliveries", [uuid.UUID])
        query = query.where(WebhookDelivery.id < after)
    rows = list(await session.execute(query.limit(limit + 1)))
    return pagination.cut(
        [_delivery(d, t) for d, t in rows], limit, "deliveries", lambda d: (d.id,)
    )


def _delivery(d: WebhookDelivery, event_type: str) -> DeliveryView:
    waiting = d.state in {DeliveryState.PENDING, DeliveryState.SENDING}
    return DeliveryView(
        id=d.id,
        event_id=d.event_id,
        endpoint_id=d.endpoint_id,
        event_type=event_type,
        state=d.state,
        attempts=d.attempts,
        created_at=d.created_at,
        next_attempt_at=d.next_attempt_at if waiting else None,
        last_status=d.last_status,
        last_error=d.last_error,
        finished_at=d.finished_at,
    )


async def replay(
    session: AsyncSession,
    op: Operation,
    member_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    since: dt.datetime,
    event_types: list[str] | None = None,
) -> tuple[int, uuid.UUID | None]:
    """Send again, as new deliveries with the same ``webhook-id``s, the member's events
    since ``since`` (oldest first, at most ``MAX_REPLAY``): how many, and the id of the
    last one (replay again from its time for more)."""
    endpoint = await _own(session, member_id, endpoint_id)
    if endpoint.state is not EndpointState.ENABLED:
        raise Conflict("the endpoint is disabled; enable it first", current_state="disabled")
    if since.tzinfo is None:
        raise InvalidInput("since is a time with a UTC offset", fields=("since",))
    query = (
        sa.select(WebhookEvent.id)
        .where(
            WebhookEvent.member_id == member_id,
            WebhookEvent.created_at >= since,
            WebhookEvent.type != outbox.EventType.PING.value,
        )
        .order_by(WebhookEvent.created_at, WebhookEvent.id)
        .limit(MAX_REPLAY)
    )
    if event_types is not None:
        query = query.where(WebhookEvent.type.in_(check_event_types(event_types).split()))
    ids = list(await session.scalars(query))
    for event_id in ids:
        session.add(outbox.deliver(event_id, endpoint.id, op.now))
    await _audit(
        session,
        op,
        Tag.WEBHOOK_DELIVERIES_REPLAYED,
        endpoint,
        since=since.isoformat(),
        count=str(len(ids)),
    )
    return len(ids), (ids[-1] if ids else None)


@dataclass(frozen=True, slots=True)
class TurnedOff:
    """An endpoint the ledger turned off after sustained failure (the console warns)."""

    member_id: uuid.UUID
    endpoint_id: uuid.UUID
    host: str
    failing_since: dt.datetime | None
    disabled_at: dt.datetime


async def turned_off(session: AsyncSession, *, limit: int = 50) -> list[TurnedOff]:
    """Endpoints turned off by the ledger, newest first (at most ``limit``)."""
    rows = await session.scalars(
        sa.select(WebhookEndpoint)
        .where(
            WebhookEndpoint.state == EndpointState.DISABLED,
            WebhookEndpoint.disabled_reason == "failing",
            WebhookEndpoint.removed_at.is_(None),
        )
        .order_by(WebhookEndpoint.disabled_at.desc())
        .limit(limit)
    )
    return [
        TurnedOff(
            member_id=e.member_id,
            endpoint_id=e.id,
            host=urlsplit(e.url).hostname or "",
            failing_since=e.failing_since,
            disabled_at=e.disabled_at or e.created_at,
        )
        for e in rows
    ]
