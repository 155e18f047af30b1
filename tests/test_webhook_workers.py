"""Delivery worker processes (`ledger webhooks worker`) against a real receiver: one
killed with SIGKILL mid-delivery loses nothing (another sends the event again, with the
same webhook-id, when the claim's lease lapses); several running at once send each
event once and never exceed an endpoint's limit of deliveries in flight."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.config import Settings
from ledger.runtime import Runtime
from ledger.webhooks import endpoints, outbox
from ledger.webhooks.models import WebhookDelivery
from tests.factories import make_member, op
from tests.live import free_port
from tests.test_end_to_end import LEDGER
from tests.webhook_receiver import HOLD, Receiver, receiving


@contextlib.contextmanager
def workers(settings: Settings, count: int, log: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env |= {
        "LEDGER_DATA_DIR": str(settings.data_dir),
        "LEDGER_DATABASE_URL": settings.resolved_database_url,
        "LEDGER_WEBHOOK_LEASE_SECONDS": "2",
        "LEDGER_WEBHOOK_POLL_SECONDS": "0.05",
        "LEDGER_WEBHOOK_TIMEOUT_SECONDS": "30",
    }
    with log.open("ab") as out:
        procs = [
            subprocess.Popen([LEDGER, "webhooks", "worker"], env=env, stdout=out, stderr=out)
            for _ in range(count)
        ]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def endpoint_and_events(
    session: AsyncSession, runtime: Runtime, receiver: Receiver, events: int, in_flight: int
) -> uuid.UUID:
    member = await make_member(session, clock=runtime.clock)
    made = await endpoints.add(
        session,
        op(runtime),
        runtime.second_factor_key,
        member.id,
        url=receiver.url,
        event_types=["dispute.opened"],
        max_in_flight=in_flight,
        allow_loopback_http=True,
    )
    receiver.secrets.append(made.secret)
    for n in range(events):
        data = {"dispute_id": str(uuid.uuid4()), "n": n}
        await outbox.emit(
            session, member.id, outbox.EventType.DISPUTE_OPENED, data, now=runtime.clock.now()
        )
    await session.commit()
    return made.endpoint.id


async def delivered(session: AsyncSession) -> list[tuple[str, int]]:
    rows = await session.execute(sa.select(WebhookDelivery.state, WebhookDelivery.attempts))
    found = [(state.value, attempts) for state, attempts in rows]
    await session.rollback()
    return found


async def test_a_worker_killed_mid_delivery_loses_nothing(
    session: AsyncSession, runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    with receiving(Receiver(port=free_port(), script=[HOLD])) as receiver:
        await endpoint_and_events(session, runtime, receiver, events=1, in_flight=1)
        with workers(settings, 1, tmp_path / "first.log") as (first,):
            assert receiver.held.acquire(timeout=30), "the first worker never sent"
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        receiver.released.set()  # the held request is answered to a dead worker
        with workers(settings, 1, tmp_path / "second.log"):
            (got,) = receiver.wait_for(1)
        deadline = time.monotonic() + 10
        while await delivered(session) != [("delivered", 2)]:
            assert time.monotonic() < deadline, await delivered(session)
            await asyncio.sleep(0.05)
    held, again = receiver.received
    assert held.answered == HOLD
    assert again.webhook_id == held.webhook_id == got.webhook_id
    assert again.verified


async def test_several_workers_send_each_event_once_within_the_endpoints_limit(
    session: AsyncSession, runtime: Runtime, settings: Settings, tmp_path: Path, backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("several workers share one PostgreSQL; SQLite deployments run one")
    with receiving(Receiver(port=free_port(), delay=0.1)) as receiver:
        await endpoint_and_events(session, runtime, receiver, events=24, in_flight=2)
        with workers(settings, 3, tmp_path / "workers.log"):
            got = receiver.wait_for(24, timeout=60)
    assert sorted(Counter(r.webhook_id for r in got).values()) == [1] * 24
    assert all(r.verified for r in got)
    assert 1 < receiver.most_in_flight <= 2
    assert sorted(await delivered(session)) == [("delivered", 1)] * 24
