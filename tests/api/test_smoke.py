from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.runtime import Runtime
from tests.factories import bearer, get_token, make_credential


async def test_a_token_from_the_token_endpoint_opens_v1_me(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    credential = await make_credential(session, runtime)
    token = await get_token(client, credential)
    response = await client.get("/v1/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["member"]["name"] == credential.member.name
