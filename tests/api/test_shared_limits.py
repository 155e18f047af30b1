"""Limits hold for a deployment, not per process: two workers (two apps on one database)
share every count, and the token endpoint stops checking secrets for a guesser."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from ledger.audit.models import AuditEventRow
from ledger.clock import FrozenClock
from ledger.config import Settings
from ledger.rate_limits import DatabaseStorage
from ledger.runtime import Runtime
from tests.api.test_pseudonyms import SUITE, b64
from tests.factories import bearer, get_token, make_credential, make_user

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def second_worker(settings: Settings, clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    """Another worker of the same deployment: its own process state, the same database."""
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def test_the_default_store_is_the_database(runtime: Runtime) -> None:
    assert isinstance(runtime.limiter.storage, DatabaseStorage)


async def test_sign_in_failures_are_counted_across_workers(
    client: httpx.AsyncClient,
    second_worker: httpx.AsyncClient,
    session: AsyncSession,
    runtime: Runtime,
) -> None:
    user = await make_user(session, runtime, password=PASSWORD)
    body = {"username": user.username, "password": "wrong"}
    for n in range(5):  # alternating workers: five failures in all, not five each
        worker = client if n % 2 else second_worker
        assert (await worker.post("/v1/auth/token", json=body)).status_code == 401
    for worker in (client, second_worker):
        right = {"username": user.username, "password": PASSWORD}
        assert (await worker.post("/v1/auth/token", json=right)).status_code == 429


async def test_pseudonym_evaluations_are_counted_across_workers_under_concurrency(
    client: httpx.AsyncClient,
    second_worker: httpx.AsyncClient,
    session: AsyncSession,
    runtime: Runtime,
    settings: Settings,
) -> None:
    limit = int(settings.pseudonym_rate_limit.split("/")[0])
    token = await get_token(client, await make_credential(session, runtime))
    element = [b64(SUITE.blind(b"a")[1])]
    headers = bearer(token)
    sends = 2 * limit // 10  # calls of ten elements each, twice the limit in all
    batch = element * 10

    async def evaluate(n: int) -> int:
        worker = client if n % 2 else second_worker
        response = await worker.post(
            "/v1/pseudonyms:evaluate", json={"blinded_elements": batch}, headers=headers
        )
        return response.status_code

    codes = []
    started = time.time()
    for start in range(0, sends, 20):  # twenty at a time, split between the workers
        codes += await asyncio.gather(*(evaluate(n) for n in range(start, start + 20)))
    elapsed = time.time() - started
    assert set(codes) <= {200, 429}
    # Within one window exactly the limit passes. The windows are wall-clock minutes and
    # the count slides: if the run straddles a boundary, the previous window's hits weigh
    # less as the new one goes on, so at most limit * elapsed / window more get through.
    # Per-worker counting would let twice the limit through.
    window = 60
    accepted = codes.count(200) * 10
    assert limit <= accepted <= limit + limit * elapsed / window + 10


async def test_failed_client_authentications_stop_costing_argon2(
    client: httpx.AsyncClient,
    second_worker: httpx.AsyncClient,
    session: AsyncSession,
    runtime: Runtime,
) -> None:
    credential = await make_credential(session, runtime)
    form = {"grant_type": "client_credentials"}
    for n in range(10):
        worker = client if n % 2 else second_worker
        wrong = await worker.post("/oauth/token", data=form, auth=(credential.client_id, "x"))
        assert wrong.status_code == 401
    # Locked: even the right secret is refused, so it is not checked at all.
    locked = await client.post(
        "/oauth/token", data=form, auth=(credential.client_id, credential.secret)
    )
    assert locked.status_code == 429, locked.text
    assert locked.json()["error"] == "slow_down"
    assert int(locked.headers["retry-after"]) >= 1
    assert locked.headers["cache-control"] == "no-store"
    async with runtime.read_sessionmaker() as read:
        refusals = list(
            await read.scalars(
                sa.select(AuditEventRow.body).where(AuditEventRow.outcome == "refused")
            )
        )
    assert sum('"slow_down"' in body for body in refusals) == 1


async def test_one_address_guessing_client_ids_is_slowed(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    form = {"grant_type": "client_credentials"}
    for n in range(50):
        guess = await client.post("/oauth/token", data=form, auth=(f"cl_guess{n}", "x"))
        assert guess.status_code == 401
    credential = await make_credential(session, runtime)
    slowed = await client.post(
        "/oauth/token", data=form, auth=(credential.client_id, credential.secret)
    )
    assert slowed.status_code == 429
    assert "this address" in slowed.json()["error_description"]
