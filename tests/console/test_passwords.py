"""Passwords someone else chose are good only for choosing one's own: the console shows
nothing else and the API issues no token until then. Users change their own; operators
reset others'; each change ends the other sessions and is recorded."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Role
from ledger.runtime import Runtime
from tests.console.test_sessions import PASSWORD, hidden, operator, sign_in, tags
from tests.factories import make_user

__all__ = ["operator"]  # fixtures

MINE = "a passphrase only I know"


@pytest.fixture
async def newcomer(session: AsyncSession, runtime: Runtime) -> str:
    """An auditor whose first password an operator chose."""
    user = await make_user(
        session, runtime, role=Role.AUDITOR, password=PASSWORD, must_change_password=True
    )
    return user.username


async def change(
    client: httpx.AsyncClient, current: str, new: str, again: str | None = None
) -> httpx.Response:
    form = await client.get("/console/password")
    return await client.post(
        "/console/password",
        data={
            "csrf_token": hidden(form.text, "csrf_token"),
            "next": hidden(form.text, "next"),
            "current_password": current,
            "new_password": new,
            "new_password_again": new if again is None else again,
        },
    )


async def test_a_given_password_leads_only_to_the_change_form(
    client: httpx.AsyncClient, runtime: Runtime, newcomer: str
) -> None:
    signed_in = await sign_in(client, newcomer, next_path="/console/audit")
    assert signed_in.status_code == 303
    for path in ("/console/audit", "/console", "/console/glossary"):
        page = await client.get(path)
        assert page.status_code == 303
        assert page.headers["location"].startswith("/console/password?next=")
    form = await client.get("/console/password", params={"next": "/console/audit"})
    assert "Choose your own password" in form.text
    assert "set by an operator" in form.text

    wrong = await change(client, "not the password", MINE)
    assert wrong.status_code == 400
    assert "the current password is wrong" in wrong.text
    differs = await change(client, PASSWORD, MINE, again=MINE + "!")
    assert "the two new passwords differ" in differs.text
    same = await change(client, PASSWORD, PASSWORD)
    assert "must differ" in same.text
    short = await change(client, PASSWORD, "short")
    assert "at least 12 characters" in short.text
    assert (await client.get("/console/audit")).status_code == 303  # still nothing else

    done = await change(client, PASSWORD, MINE)
    assert done.status_code == 303
    assert (await client.get("/console/audit")).status_code == 200
    assert (await tags(runtime)).count("member:user:password_changed") == 1

    client.cookies.clear()
    client.cookies.set("ledger_locale", "en")
    assert (await sign_in(client, newcomer)).status_code == 401  # the old one is gone
    assert (await sign_in(client, newcomer, password=MINE)).status_code == 303


async def test_a_change_ends_the_users_other_sessions(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    user = await make_user(session, runtime, role=Role.AUDITOR, password=PASSWORD)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        other.cookies.set("ledger_locale", "en")
        await sign_in(other, user.username)
        assert (await other.get("/console/audit")).status_code == 200
        await sign_in(client, user.username)
        assert (await change(client, PASSWORD, MINE)).status_code == 303
        assert (await client.get("/console/audit")).status_code == 200  # this one stays
        ended = await other.get("/console/audit")
        assert ended.status_code == 303
        assert ended.headers["location"].startswith("/console/sign-in")


async def test_an_operator_resets_a_password_and_the_user_must_choose_anew(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime,
    operator: str,
) -> None:  # fmt: skip
    user = await make_user(session, runtime, role=Role.AUDITOR, password=PASSWORD)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as theirs:
        theirs.cookies.set("ledger_locale", "en")
        await sign_in(theirs, user.username)
        await sign_in(client, operator)
        page = await client.get("/console/users")
        reset = await client.post(
            f"/console/users/{user.username}/password-reset",
            data={"csrf_token": hidden(page.text, "csrf_token")},
        )
        assert reset.status_code == 200
        assert f"New password for {user.username}" in reset.text
        given = hidden_code(reset.text)
        assert (await theirs.get("/console/audit")).status_code == 303  # their session ended
        theirs.cookies.delete("ledger_console")
        assert (await sign_in(theirs, user.username)).status_code == 401  # old password
        assert (await sign_in(theirs, user.username, password=given)).status_code == 303
        forced = await theirs.get("/console/audit")
        assert forced.headers["location"].startswith("/console/password")
    assert (await tags(runtime)).count("member:user:password_reset") == 1
    own = await client.post(
        f"/console/users/{operator}/password-reset",
        data={"csrf_token": hidden(page.text, "csrf_token")},
    )
    assert own.status_code == 400  # one's own is changed, not reset


def hidden_code(page: str) -> str:
    start = page.index('id="new-user-password">') + len('id="new-user-password">')
    return page[start : page.index("</code>", start)]


async def test_the_api_issues_no_token_until_the_password_is_ones_own(
    client: httpx.AsyncClient, runtime: Runtime, newcomer: str
) -> None:
    refused = await client.post("/v1/auth/token", json={"username": newcomer, "password": PASSWORD})
    assert refused.status_code == 403
    assert refused.json()["type"] == "/problems/password-change-required"
    assert "/console/password" in refused.json()["detail"]
    assert "access_token" not in refused.text
    await sign_in(client, newcomer)
    await change(client, PASSWORD, MINE)
    issued = await client.post("/v1/auth/token", json={"username": newcomer, "password": MINE})
    assert issued.status_code == 200
    assert issued.json()["role"] == "auditor"
