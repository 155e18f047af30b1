"""First start: the data directory, keys, the schema, and (on request) a demo member."""

from __future__ import annotations

import datetime as dt
import shlex
from dataclasses import dataclass

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from ledger import db, db_roles
from ledger.access import keys
from ledger.access.permissions import Role, Scope
from ledger.access.secrets import SecretHasher
from ledger.config import Settings
from ledger.context import Operation
from ledger.members import passwords
from ledger.members import service as members
from ledger.members.service import IssuedClient
from ledger.runtime import KEY_FILES, KEY_RINGS

DEMO_MEMBER = "demo"
DEMO_DISPLAY_NAME = "演示商城"  # shown in the console and the buyer's file


@dataclass(frozen=True, slots=True)
class InitResult:
    created_keys: list[str]
    revision: str | None


class ServiceRoleRefused(Exception):
    """The service's database role could switch off the audit log's protections."""


async def service_role_problem(settings: Settings) -> str | None:
    """Why the service's PostgreSQL role may not run the ledger, or None (SQLite: None)."""
    service_url, migration_url = (
        settings.resolved_database_url,
        settings.resolved_migration_database_url,
    )
    if make_url(service_url).get_backend_name() != "postgresql":
        return None
    if db_roles.role_of(service_url) == db_roles.role_of(migration_url):
        return (
            "the service would own the tables it writes, and could disable their "
            "append-only triggers: set LEDGER_MIGRATION_DATABASE_URL to a role that owns "
            "the schema (docs/operations.md)"
        )
    engine = db.create_engine(service_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            problem = await conn.run_sync(db_roles.service_role_problem)
    finally:
        await engine.dispose()
    return None if problem is None else f"the service's database role {problem}"


async def migrate(settings: Settings, revision: str = "head") -> str | None:
    """Migrate as the migration role, then give the service role exactly its privileges
    (PostgreSQL, when the two differ). Returns the revision reached."""
    engine = db.create_engine(settings.resolved_migration_database_url, pool_size=1)
    try:
        await db.upgrade(engine, revision)
        service = db_roles.role_of(settings.resolved_database_url)
        owner = db_roles.role_of(settings.resolved_migration_database_url)
        if engine.dialect.name == "postgresql" and service and service != owner:
            async with engine.begin() as conn:
                await conn.run_sync(db_roles.grant, service)
        return await db.current_revision(engine)
    finally:
        await engine.dispose()


async def initialize(
    settings: Settings, *, now: dt.datetime, allow_superuser: bool = False
) -> InitResult:
    """Make what is missing (data directory, key rings, schema); keep what exists.

    On PostgreSQL, refuses (``ServiceRoleRefused``, before it changes anything) a service
    role that owns the schema or is a superuser, unless ``allow_superuser``."""
    if not allow_superuser:
        problem = await service_role_problem(settings)
        if problem is not None:
            raise ServiceRoleRefused(problem)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_dir = settings.resolved_key_dir
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_dir.chmod(0o700)
    created = [ring for ring in KEY_RINGS if keys.ensure_ring(key_dir / ring, now=now)]
    created += [
        module.KEY_DIR
        for module in KEY_FILES
        if module.ensure_key(key_dir / module.KEY_DIR, now=now)
    ]
    return InitResult(created_keys=created, revision=await migrate(settings))


async def create_demo_member(
    session: AsyncSession, hasher: SecretHasher, *, now: dt.datetime
) -> IssuedClient | None:
    """On a ledger with no members yet, create ``demo`` with a credential holding every scope."""
    if await members.list_members(session):
        return None
    op = Operation.system(now)
    member = await members.create_member(
        session, op, name=DEMO_MEMBER, display_name=DEMO_DISPLAY_NAME
    )
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
        password = passwords.given_password()
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
