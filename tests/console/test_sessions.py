"""Console sign-in, sessions, CSRF and roles, through HTTP (the browser tests drive the
same pages in Chromium)."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Role
from ledger.audit.models import AuditEventRow
from ledger.clock import FrozenClock
from ledger.console.models import ConsoleSession
from ledger.members import service as members
from ledger.runtime import Runtime
from tests.factories import make_user, op

PASSWORD = "correct horse battery staple"


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match is not None, f"no {name} in the page"
    return match.group(1)


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD, next_path: str = ""
) -> httpx.Response:
    form = await client.get("/console/sign-in", params={"next": next_path} if next_path else {})
    return await client.post(
        "/console/sign-in",
        data={
            "csrf_token": hidden(form.text, "csrf_token"),
            "next": hidden(form.text, "next"),
            "username": username,
            "password": password,
        },
    )


async def tags(runtime: Runtime) -> list[str]:
    async with runtime.read_sessionmaker() as read:
        return list(await read.scalars(sa.select(AuditEventRow.tag).order_by(AuditEventRow.id)))


@pytest.fixture
async def auditor(session: AsyncSession, runtime: Runtime) -> str:
    return (await make_user(session, runtime, role=Role.AUDITOR, password=PASSWORD)).username


@pytest.fixture
async def operator(session: AsyncSession, runtime: Runtime) -> str:
    return (await make_user(session, runtime, role=Role.OPERATOR, password=PASSWORD)).username


async def test_sign_in_sets_a_strict_httponly_cookie_and_goes_where_asked(
    client: httpx.AsyncClient, auditor: str, runtime: Runtime
) -> None:
    response = await sign_in(client, auditor, next_path="/console/integrity")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/integrity"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("ledger_console=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/console" in cookie
    home = await client.get("/console")
    assert home.status_code == 200
    assert auditor in home.text
    assert home.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in home.headers["content-security-policy"]
    assert "auth:user:signed_in" in await tags(runtime)
    # The table holds the token's hash, never the token.
    token = client.cookies["ledger_console"]
    async with runtime.read_sessionmaker() as read:
        stored = list(await read.scalars(sa.select(ConsoleSession.token_hash)))
    assert token not in stored
    assert len(stored) == 1


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/v1/me"])
async def test_next_never_leaves_the_console(
    client: httpx.AsyncClient, auditor: str, target: str
) -> None:
    response = await sign_in(client, auditor, next_path=target)
    assert response.headers["location"] == "/console"


async def test_a_wrong_password_is_shown_audited_and_counted(
    client: httpx.AsyncClient, auditor: str, runtime: Runtime
) -> None:
    response = await sign_in(client, auditor, password="nope")
    assert response.status_code == 401
    assert "wrong username or password" in response.text
    assert "ledger_console=" not in response.headers.get("set-cookie", "")
    assert (await tags(runtime))[-1] == "auth:user:refused"
    for _ in range(4):
        await sign_in(client, auditor, password="nope")
    locked = await sign_in(client, auditor)
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.text


async def test_a_sign_in_without_its_form_token_is_refused(
    client: httpx.AsyncClient, auditor: str
) -> None:
    response = await client.post(
        "/console/sign-in", data={"username": auditor, "password": PASSWORD, "csrf_token": "x"}
    )
    assert response.status_code == 403
    assert "ledger_console=" not in response.headers.get("set-cookie", "")


async def test_a_forged_post_without_the_csrf_token_is_refused_and_audited(
    client: httpx.AsyncClient, auditor: str, runtime: Runtime
) -> None:
    await sign_in(client, auditor)
    forged = await client.post("/console/sign-out", data={})
    assert forged.status_code == 403
    assert "console:request:refused" in await tags(runtime)
    other_site = await client.post(
        "/console/sign-out",
        data={"csrf_token": hidden((await client.get("/console")).text, "csrf_token")},
        headers={"Origin": "https://evil.example"},
    )
    assert other_site.status_code == 403
    assert (await client.get("/console")).status_code == 200  # still signed in


async def test_sign_out_ends_the_session_for_good(
    client: httpx.AsyncClient, auditor: str, runtime: Runtime
) -> None:
    await sign_in(client, auditor)
    token = client.cookies["ledger_console"]
    home = await client.get("/console")
    out = await client.post(
        "/console/sign-out", data={"csrf_token": hidden(home.text, "csrf_token")}
    )
    assert out.status_code == 303
    assert "auth:user:signed_out" in await tags(runtime)
    # The old cookie, replayed, opens nothing.
    client.cookies.set("ledger_console", token, path="/console")
    again = await client.get("/console")
    assert again.status_code == 303
    assert again.headers["location"].startswith("/console/sign-in")


async def test_idle_and_absolute_expiry(
    client: httpx.AsyncClient, auditor: str, clock: FrozenClock
) -> None:
    await sign_in(client, auditor)
    clock.advance(dt.timedelta(minutes=14))
    assert (await client.get("/console")).status_code == 200  # activity keeps it alive
    clock.advance(dt.timedelta(minutes=16))
    idle = await client.get("/console")
    assert idle.status_code == 303
    assert "expired=1" in idle.headers["location"]
    await sign_in(client, auditor)
    for _ in range(8 * 4 + 1):  # active all day: still ends 8 hours after sign-in
        clock.advance(dt.timedelta(minutes=14, seconds=59))
        last = await client.get("/console")
        if last.status_code != 200:
            break
    assert last.status_code == 303


async def test_a_disabled_user_is_signed_out_at_the_next_request(
    client: httpx.AsyncClient, auditor: str, session: AsyncSession, runtime: Runtime
) -> None:
    await sign_in(client, auditor)
    await members.disable_user(session, op(runtime), auditor)
    await session.commit()
    assert (await client.get("/console")).status_code == 303


async def test_no_session_means_the_sign_in_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/console")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?next=/console"
    page = await client.get("/console/sign-in")
    assert '<label for="username">' in page.text


async def test_over_tls_the_cookie_is_secure(app: FastAPI, auditor: str) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as tls:
        response = await sign_in(tls, auditor)
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("ledger_console=")
    )
    assert "Secure" in cookie
