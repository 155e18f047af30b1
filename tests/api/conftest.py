"""Two member platforms, each with a client holding every scope and a token."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.runtime import Runtime
from tests.api.test_reports import Member, member


@pytest.fixture
async def acme(client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime) -> Member:
    return await member(client, session, runtime)


@pytest.fixture
async def shop(client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime) -> Member:
    return await member(client, session, runtime)
