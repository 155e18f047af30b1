"""Typed factories. Keyword-only, sensible defaults; each commits what it makes so the
app under test (with its own connections) sees it."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Role, Scope
from ledger.clock import Clock
from ledger.context import Operation
from ledger.members import service as members
from ledger.members.service import ClientView, MemberView, UserView
from ledger.runtime import Runtime

_seq = itertools.count(1)


@dataclass(frozen=True)
class Credential:
    member: MemberView
    client: ClientView
    secret: str

    @property
    def client_id(self) -> str:
        return self.client.client_id


def op(runtime: Runtime) -> Operation:
    """An operation by the `system` actor at the runtime's current time."""
    return Operation.system(runtime.clock.now())


async def make_member(
    session: AsyncSession, *, clock: Clock, name: str | None = None, display_name: str | None = None
) -> MemberView:
    member = await members.create_member(
        session,
        Operation.system(clock.now()),
        name=name or f"member-{next(_seq)}",
        display_name=display_name,
    )
    await session.commit()
    return member


async def make_credential(
    session: AsyncSession,
    runtime: Runtime,
    *,
    member: MemberView | None = None,
    scopes: frozenset[Scope] = frozenset(Scope),
    label: str = "test",
) -> Credential:
    member = member or await make_member(session, clock=runtime.clock)
    issued = await members.issue_client(
        session, runtime.hasher, op(runtime), member_id=member.id, scopes=scopes, label=label
    )
    await session.commit()
    return Credential(member=member, client=issued.client, secret=issued.client_secret)


async def make_user(
    session: AsyncSession,
    runtime: Runtime,
    *,
    username: str | None = None,
    role: Role = Role.AUDITOR,
    password: str = "correct horse battery staple",
    must_change_password: bool = False,
) -> UserView:
    """A user who has set their own password (``must_change_password`` for one whose
    password was chosen for them, as an operator's are)."""
    user = await members.create_user(
        session,
        runtime.hasher,
        op(runtime),
        username=username or f"user-{next(_seq)}",
        role=role,
        password=password,
        must_change_password=must_change_password,
    )
    await session.commit()
    return user


async def get_token(
    client: httpx.AsyncClient, credential: Credential, *, scope: str | None = None
) -> str:
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    response = await client.post(
        "/oauth/token", data=data, auth=(credential.client_id, credential.secret)
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def access_change(runtime: Runtime) -> AsyncIterator[None]:
    """Wrap a committed change to a client or member. On PostgreSQL, servers learn of it
    by notification (a few milliseconds after the commit): wait until this one has."""
    generation = runtime.access_cache.generation
    yield
    if runtime.access_listener is not None:
        await asyncio.wait_for(runtime.access_cache.changed_since(generation), timeout=10)
