"""The delivery worker: sends the outbox's deliveries, signed per Standard Webhooks.

Its own process (`ledger webhooks worker`), like the sequencer; several may run. A
worker *claims* due deliveries in one short transaction (``SENDING`` under a lease),
sends them with no transaction open, and records each outcome in another. On
PostgreSQL the claim locks the endpoint row (``FOR UPDATE SKIP LOCKED``), so workers
never claim the same delivery and never exceed an endpoint's ``max_in_flight``; on
SQLite the database's single writer does the same. A worker killed mid-delivery leaves
its claims to lapse: when the lease ends another worker sends them again, with the same
``webhook-id`` (delivery is at least once; receivers drop duplicates by that id).

Retries: after attempt *n* fails, the next is ``5 s * 4^(n-1)``, at most 12 h, with
±20 % jitter (5 s, 20 s, 80 s, 5 min, 21 min, 85 min, 5.7 h, then every 12 h), until
``webhook_retry_hours`` (72 h) after the event; then the delivery has failed. An
endpoint failing with no success for ``webhook_disable_after_hours`` is turned off,
audited, and shown in the console; it resumes when turned on again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import random
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook

from ledger.audit.log import record
from ledger.audit.tags import Tag
from ledger.clock import Clock
from ledger.config import Settings
from ledger.context import Operation
from ledger.members.sealing import SealingKey
from ledger.webhooks.endpoints import message_id
from ledger.webhooks.models import (
    DeliveryState,
    EndpointState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

log = logging.getLogger("ledger.webhooks")

USER_AGENT = "refund-ledger-webhooks/1"
FIRST_RETRY = dt.timedelta(seconds=5)
LONGEST_WAIT = dt.timedelta(hours=12)
MAX_RESPONSE_BYTES = 64 * 1024  # read and dropped: a receiver's answer is not kept


def backoff(attempts: int, *, jitter: float | None = None) -> dt.timedelta:
    """The wait after ``attempts`` failed attempts (from 1), with ±20 % jitter."""
    base = min(LONGEST_WAIT, FIRST_RETRY * 4 ** min(attempts - 1, 20))
    factor = random.uniform(0.8, 1.2) if jitter is None else jitter  # noqa: S311
    wait: dt.timedelta = base * factor
    return wait


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    timeout: float = 10.0
    retry_for: dt.timedelta = dt.timedelta(hours=72)
    disable_after: dt.timedelta = dt.timedelta(hours=72)
    lease: dt.timedelta = dt.timedelta(seconds=60)
    batch: int = 50
    allow_loopback: bool = False  # development: endpoints on this machine

    @classmethod
    def of(cls, settings: Settings) -> DeliveryConfig:
        return cls(
            timeout=settings.webhook_timeout_seconds,
            retry_for=dt.timedelta(hours=settings.webhook_retry_hours),
            disable_after=dt.timedelta(hours=settings.webhook_disable_after_hours),
            lease=dt.timedelta(seconds=settings.webhook_lease_seconds),
            allow_loopback=settings.webhook_allow_loopback_http,
        )


@dataclass(frozen=True, slots=True)
class Claimed:
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    message_id: str
    payload: str
    secrets: tuple[str, ...]  # the current one first


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def signature(secrets: tuple[str, ...], message_id: str, at: dt.datetime, payload: str) -> str:
    """The ``webhook-signature`` header: one ``v1,`` signature per secret in use."""
    return " ".join(Webhook(s).sign(message_id, at, payload) for s in secrets)


def _due(now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        sa.and_(
            WebhookDelivery.state == DeliveryState.PENDING,
            WebhookDelivery.next_attempt_at <= now,
        ),
        sa.and_(
            WebhookDelivery.state == DeliveryState.SENDING,
            WebhookDelivery.lease_until <= now,
        ),
    )


async def claim(
    session: AsyncSession, key: SealingKey, now: dt.datetime, config: DeliveryConfig
) -> list[Claimed]:
    """Claim due deliveries of enabled endpoints, within each endpoint's limit."""
    endpoints = list(
        await session.scalars(
            sa.select(WebhookEndpoint)
            .where(
                WebhookEndpoint.state == EndpointState.ENABLED,
                sa.exists().where(WebhookDelivery.endpoint_id == WebhookEndpoint.id, _due(now)),
            )
            .limit(config.batch)
            .with_for_update(skip_locked=True)
        )
    )
    claimed: list[Claimed] = []
    for endpoint in endpoints:
        busy = await session.scalar(
            sa.select(sa.func.count()).where(
                WebhookDelivery.endpoint_id == endpoint.id,
                WebhookDelivery.state == DeliveryState.SENDING,
                WebhookDelivery.lease_until > now,
            )
        )
        free = endpoint.max_in_flight - (busy or 0)
        if free <= 0:
            continue
        rows = list(
            await session.execute(
                sa.select(WebhookDelivery, WebhookEvent.payload)
                .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
                .where(WebhookDelivery.endpoint_id == endpoint.id, _due(now))
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(min(free, config.batch))
            )
        )
        secrets = _secrets(key, endpoint, now)
        for delivery, payload in rows:
            delivery.state = DeliveryState.SENDING
            delivery.lease_until = now + config.lease
            delivery.attempts += 1
            claimed.append(
                Claimed(
                    delivery_id=delivery.id,
                    endpoint_id=endpoint.id,
                    url=endpoint.url,
                    message_id=message_id(delivery.event_id),
                    payload=payload,
                    secrets=secrets,
                )
            )
    return claimed


def _secrets(key: SealingKey, endpoint: WebhookEndpoint, now: dt.datetime) -> tuple[str, ...]:
    current = key.open(endpoint.id, endpoint.secret).decode("ascii")
    until = endpoint.previous_secret_until
    if endpoint.previous_secret and until is not None and now < until:
        return (current, key.open(endpoint.id, endpoint.previous_secret).decode("ascii"))
    return (current,)


async def private_address(url: str, *, allow_loopback: bool) -> bool:
    """Whether ``url``'s host is, or resolves to, an address that is not public: a
    member's endpoint must not lead the worker into the ledger's own network. Loopback
    passes where the operator allows it (development). A name that does not resolve is
    left to the request, which fails as ``connect_failed``."""
    host = urlsplit(url).hostname or ""
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, None)
        except OSError:
            return False
        addresses = [ipaddress.ip_address(info[4][0]) for info in found]
    return any(not a.is_global and not (allow_loopback and a.is_loopback) for a in addresses)


async def send(
    http: httpx.AsyncClient,
    job: Claimed,
    at: dt.datetime,
    *,
    within: float,
    allow_loopback: bool = False,
) -> Outcome:
    """POST one delivery; its status, or the kind of failure. Never raises."""
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": job.message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature(job.secrets, job.message_id, at, job.payload),
    }
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    if await private_address(job.url, allow_loopback=allow_loopback):
        return Outcome(None, "private_address", 0)
    try:
        # One deadline for the whole exchange: a receiver that trickles its answer
        # holds a worker no longer than one that never answers.
        async with asyncio.timeout(within):
            async with http.stream(
                "POST", job.url, content=job.payload.encode("utf-8"), headers=headers
            ) as response:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read > MAX_RESPONSE_BYTES:
                        break
                status = response.status_code
    except (httpx.TimeoutException, TimeoutError):
        error = "timeout"
    except httpx.ConnectError:
        error = "connect_failed"
    except httpx.HTTPError as exc:
        error = type(exc).__name__[:64]
    return Outcome(status, error, int((time.monotonic() - started) * 1000))


async def settle(
    session: AsyncSession,
    job: Claimed,
    outcome: Outcome,
    now: dt.datetime,
    config: DeliveryConfig,
) -> None:
    """Record one attempt's outcome, the endpoint's health, and what happens next."""
    delivery = await session.get(WebhookDelivery, job.delivery_id, with_for_update=True)
    endpoint = await session.get(WebhookEndpoint, job.endpoint_id, with_for_update=True)
    assert delivery is not None
    assert endpoint is not None
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            at=now,
            status=outcome.status,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
    )
    delivery.last_status, delivery.last_error = outcome.status, outcome.error
    delivery.lease_until = None
    if delivery.state is DeliveryState.DELIVERED:
        return  # another worker's attempt (after our lease lapsed) got there first
    if outcome.ok:
        delivery.state, delivery.finished_at = DeliveryState.DELIVERED, now
        endpoint.last_success_at, endpoint.failing_since = now, None
        return
    endpoint.failing_since = endpoint.failing_since or now
    following = now + backoff(max(1, delivery.attempts))
    if following > delivery.created_at + config.retry_for:
        delivery.state, delivery.finished_at = DeliveryState.FAILED, now
    else:
        delivery.state, delivery.next_attempt_at = DeliveryState.PENDING, following
    if endpoint.state is EndpointState.ENABLED and now - endpoint.failing_since >= (
        config.disable_after
    ):
        endpoint.state = EndpointState.DISABLED
        endpoint.disabled_at, endpoint.disabled_reason = now, "failing"
        await record(
            session,
            Operation.system(now).event(
                Tag.WEBHOOK_ENDPOINT_DISABLED,
                body={
                    "endpoint_id": str(endpoint.id),
                    "member_id": str(endpoint.member_id),
                    "reason": "failing",
                    "failing_since": endpoint.failing_since.isoformat(),
                },
            ),
            now=now,
        )


class DeliveryWorker:
    """Claims, sends and settles deliveries until stopped."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        key: SealingKey,
        *,
        clock: Clock,
        config: DeliveryConfig,
        poll_seconds: float = 0.5,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._key = key
        self._clock = clock
        self._config = config
        self._poll = poll_seconds
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(config.timeout),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )
        self._stopping = asyncio.Event()

    async def run_once(self) -> int:
        """One round: claim what is due, send it all at once, settle each. How many."""
        async with self._sessionmaker() as session, session.begin():
            jobs = await claim(session, self._key, self._clock.now(), self._config)
        if jobs:
            await asyncio.gather(*(self._deliver(job) for job in jobs))
        return len(jobs)

    async def _deliver(self, job: Claimed) -> None:
        outcome = await send(
            self._http,
            job,
            self._clock.now(),
            within=self._config.timeout,
            allow_loopback=self._config.allow_loopback,
        )
        async with self._sessionmaker() as session, session.begin():
            await settle(session, job, outcome, self._clock.now(), self._config)

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                sent = await self.run_once()
            except Exception as exc:  # noqa: BLE001  (the next round retries; leases lapse)
                log.warning("delivery round failed", extra={"error": type(exc).__name__})
                sent = 0
            if not sent:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._poll)

    def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        await self._http.aclose()
