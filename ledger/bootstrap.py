"""First start: the data directory, keys, the schema, and (on request) a demo member."""

from __future__ import annotations

import datetime as dt
import secrets
import shlex
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ledger import db
from ledger.access import keys
from ledger.access.permissions import Role, Scope
from ledger.access.secrets import SecretHasher
from ledger.config import Settings
from ledger.context import Operation
from ledger.members import service as members
from ledger.members.service import IssuedClient
from ledger.pseudonyms import keys as pseudonym_keys
from ledger.runtime import KEY_RINGS

DEMO_MEMBER = "demo"


@dataclass(frozen=True, slots=True)
class InitResult:
    created_keys: list[str]
    revision: str | None


async def initialize(settings: Settings, *, now: dt.datetime) -> InitResult:
    """Make what is missing (data directory, key rings, schema); keep what exists."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_dir = settings.resolved_key_dir
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_dir.chmod(0o700)
    created = [ring for ring in KEY_RINGS if keys.ensure_ring(key_dir / ring, now=now)]
    if pseudonym_keys.ensure_key(key_dir / pseudonym_keys.KEY_DIR, now=now):
        created.append(pseudonym_keys.KEY_DIR)
    engine = db.create_engine(settings.resolved_database_url, pool_size=1)
    try:
        await db.upgrade(engine)
        revision = await db.current_revision(engine)
    finally:
        await engine.dispose()
    return InitResult(created_keys=created, revision=revision)


async def create_demo_member(
    session: AsyncSession, hasher: SecretHasher, *, now: dt.datetime
) -> IssuedClient | None:
    """On a ledger with no members yet, create ``demo`` with a credential holding every scope."""
    if await members.list_members(session):
        return None
    op = Operation.system(now)
    member = await members.create_member(session, op, name=DEMO_MEMBER)
    return await members.issue_client(
        session,
        hasher,
        op,
        member_id=member.id,
        scopes=frozenset(Scope),
        label="demo credential made by `ledger init --demo`",
    )


async def create_demo_users(
    session: AsyncSession, hasher: SecretHasher, *, now: dt.datetime
) -> list[tuple[str, str, str]]:
    """On a ledger with no console users yet, ``demo-operator`` and ``demo-auditor``
    with random passwords; returns (username, role, password) to show once."""
    if await members.list_users(session):
        return []
    op = Operation.system(now)
    made = []
    for role in (Role.OPERATOR, Role.AUDITOR):
        password = secrets.token_urlsafe(12)
        user = await members.create_user(
            session, hasher, op, username=f"demo-{role.value}", role=role, password=password
        )
        made.append((user.username, role.value, password))
    return made


def token_command(public_url: str, issued: IssuedClient) -> str:
    """A ready-to-paste command that obtains an access token with this credential."""
    return (
        f"curl -s -u {shlex.quote(issued.client.client_id + ':' + issued.client_secret)} "
        f"-d grant_type=client_credentials {shlex.quote(public_url + '/oauth/token')}"
    )
