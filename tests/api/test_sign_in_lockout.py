"""Repeated failed sign-ins lock the account (then the address) for a while."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.sign_in_guard import SignInGuard
from ledger.audit.models import AuditEventRow
from ledger.runtime import Runtime
from tests.factories import make_user

PASSWORD = "correct horse battery staple"


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/v1/auth/token", json={"username": username, "password": password})


async def test_five_failures_lock_the_account_even_for_the_right_password(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    user = await make_user(session, runtime, password=PASSWORD)
    for _ in range(5):
        assert (await sign_in(client, user.username, "wrong")).status_code == 401
    locked = await sign_in(client, user.username, PASSWORD)
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1
    assert "too many failed sign-ins for this account" in locked.json()["detail"]
    async with runtime.read_sessionmaker() as read:
        reasons = list(
            await read.scalars(
                sa.select(AuditEventRow.body).where(AuditEventRow.tag == "auth:user:refused")
            )
        )
    assert len(reasons) == 6
    assert '"account locked"' in reasons[-1]


async def test_a_success_clears_the_count(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    user = await make_user(session, runtime, password=PASSWORD)
    for _ in range(4):
        await sign_in(client, user.username, "wrong")
    assert (await sign_in(client, user.username, PASSWORD)).status_code == 200
    for _ in range(4):
        await sign_in(client, user.username, "wrong")
    assert (await sign_in(client, user.username, PASSWORD)).status_code == 200


async def test_one_address_trying_many_accounts_is_slowed(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    runtime.sign_in_guard = SignInGuard("5/15minutes", "3/15minutes", limiter=runtime.limiter)
    user = await make_user(session, runtime, password=PASSWORD)
    for n in range(3):
        assert (await sign_in(client, f"nobody-{n}", "guess")).status_code == 401
    refused = await sign_in(client, user.username, PASSWORD)
    assert refused.status_code == 429
    assert "this address" in refused.json()["detail"]
