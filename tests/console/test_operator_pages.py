"""The operator's pages: members, credentials (secret shown once), users, policy; and
auditors refused every action."""

from __future__ import annotations

import re

import httpx
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.members.models import Client
from ledger.runtime import Runtime
from ledger.webhooks.models import EndpointState, WebhookEndpoint
from tests.console.test_sessions import auditor, hidden, operator, sign_in, tags
from tests.factories import access_change, bearer

__all__ = ["auditor", "operator"]  # fixtures


async def post(
    client: httpx.AsyncClient, page: str, path: str, **fields: str | list[str]
) -> httpx.Response:
    token = hidden((await client.get(page)).text, "csrf_token")
    return await client.post(path, data={"csrf_token": token, **fields})


async def test_onboard_issue_use_suspend_and_see_the_token_refused(
    client: httpx.AsyncClient, runtime: Runtime, operator: str
) -> None:
    await sign_in(client, operator)
    created = await post(client, "/console/members", "/console/members", name="acme")
    assert created.status_code == 303
    member_path = created.headers["location"]
    issued = await post(
        client, member_path, f"{member_path}/clients", label="refunds", scope=["risk:read"]
    )
    assert issued.status_code == 200
    client_id = re.search(r'id="new-client-id">([^<]+)<', issued.text).group(1)  # type: ignore[union-attr]
    secret = re.search(r'id="new-client-secret">([^<]+)<', issued.text).group(1)  # type: ignore[union-attr]
    # The secret is on that page only: the member page never shows it again.
    assert secret not in (await client.get(member_path)).text
    async with runtime.read_sessionmaker() as read:
        stored = await read.scalar(
            sa.select(Client.secret_hash).where(Client.client_id == client_id)
        )
    assert stored is not None
    assert secret not in stored
    token = (
        await client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
    ).json()["access_token"]
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
    async with access_change(runtime):
        suspended = await post(client, member_path, f"{member_path}/status", status="suspended")
    assert suspended.status_code == 303
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 401
    assert {"member:member:created", "member:client:issued", "member:member:suspended"} <= set(
        await tags(runtime)
    )


async def test_a_bad_name_is_explained_and_nothing_is_made(
    client: httpx.AsyncClient, operator: str
) -> None:
    await sign_in(client, operator)
    refused = await post(client, "/console/members", "/console/members", name="Not OK!")
    assert refused.status_code == 400
    assert "lowercase" in refused.text
    assert "Not OK!" not in (await client.get("/console/members")).text


async def test_users_are_created_with_a_one_time_password_and_can_be_disabled(
    client: httpx.AsyncClient, app: FastAPI, operator: str
) -> None:
    await sign_in(client, operator)
    made = await post(client, "/console/users", "/console/users", username="audrey", role="auditor")
    password = re.search(r'id="new-user-password">([^<]+)<', made.text).group(1)  # type: ignore[union-attr]
    other = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    async with other:
        assert (await sign_in(other, "audrey", password)).status_code == 303
    disabled = await post(client, "/console/users", "/console/users/audrey/disable")
    assert disabled.status_code == 303
    assert "disabled" in (await client.get("/console/users")).text


async def test_the_policy_page_shows_the_version_in_force(
    client: httpx.AsyncClient, operator: str
) -> None:
    await sign_in(client, operator)
    page = await client.get("/console/policy")
    assert "In force: version" in page.text


async def test_auditors_cannot_change_anything(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, auditor: str
) -> None:
    await sign_in(client, auditor)
    token = hidden((await client.get("/console")).text, "csrf_token")
    for path, fields in [
        ("/console/members", {"name": "sneaky"}),
        ("/console/users", {"username": "sneaky", "role": "operator"}),
        ("/console/clients/cl_x/revoke", {}),
    ]:
        refused = await client.post(path, data={"csrf_token": token, **fields})
        assert refused.status_code == 403, path
    for path in ["/console/members", "/console/users", "/console/policy"]:
        assert (await client.get(path)).status_code == 403
    async with runtime.read_sessionmaker() as read:
        names = [
            m.name
            for m in await __import__("ledger.members.service", fromlist=["x"]).list_members(read)
        ]
    assert "sneaky" not in names


async def test_an_operator_registers_a_members_endpoint_and_sees_it_turned_off(
    client: httpx.AsyncClient, runtime: Runtime, operator: str
) -> None:
    await sign_in(client, operator)
    created = await post(client, "/console/members", "/console/members", name="hooked")
    member_path = created.headers["location"]
    added = await post(
        client,
        member_path,
        f"{member_path}/webhooks",
        url="https://risk.example.com/ledger-events",
        description="refund review",
        event_type=["subject.assessment_changed", "dispute.opened"],
    )
    assert added.status_code == 200, added.text
    secret = re.search(r'id="new-endpoint-secret">([^<]+)<', added.text).group(1)  # type: ignore[union-attr]
    assert secret.startswith("whsec_")
    page = (await client.get(member_path)).text
    assert secret not in page
    assert "risk.example.com/ledger-events" in page
    refused = await post(
        client, member_path, f"{member_path}/webhooks", url="http://risk.example.com/x"
    )
    assert refused.status_code == 400
    # The ledger turns it off after days of failures: the operator is told at home.
    async with runtime.sessionmaker() as session, session.begin():
        endpoint = await session.scalar(sa.select(WebhookEndpoint))
        assert endpoint is not None
        endpoint.state = EndpointState.DISABLED
        endpoint.disabled_reason = "failing"
        endpoint.disabled_at = endpoint.failing_since = runtime.clock.now()
        endpoint_id = endpoint.id
    home = (await client.get("/console")).text
    assert 'id="endpoints-turned-off"' in home
    assert "risk.example.com" in home
    assert "endpoint-off" in (await client.get(member_path)).text
    turned = await post(
        client, member_path, f"{member_path}/webhooks/{endpoint_id}/state", state="enabled"
    )
    assert turned.status_code == 303
    assert 'id="endpoints-turned-off"' not in (await client.get("/console")).text
    rotated = await post(client, member_path, f"{member_path}/webhooks/{endpoint_id}/secret")
    assert rotated.status_code == 200
    assert "new-endpoint-secret" in rotated.text
    removed = await post(client, member_path, f"{member_path}/webhooks/{endpoint_id}/remove")
    assert removed.status_code == 303
    assert "risk.example.com/ledger-events" not in (await client.get(member_path)).text
    assert {
        "webhook:endpoint:added",
        "webhook:endpoint:enabled",
        "webhook:endpoint:rotated",
        "webhook:endpoint:removed",
    } <= set(await tags(runtime))
