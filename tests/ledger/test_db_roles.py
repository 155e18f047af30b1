"""The append-only guarantee holds against the service's own database role: on
PostgreSQL the service owns nothing and cannot rewrite, erase or unprotect the log."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from api.app import create_app
from ledger.cli import main
from ledger.clock import FrozenClock
from ledger.config import Settings
from ledger.db_roles import SERVICE_PRIVILEGES
from ledger.models import metadata
from tests.api.test_reports import payload
from tests.conftest import FAST_ARGON2
from tests.databases import POSTGRES_URL
from tests.factories import bearer, get_token, make_credential


def test_every_table_says_what_the_service_may_do() -> None:
    # A new table must be named in SERVICE_PRIVILEGES, or the service cannot use it.
    assert set(SERVICE_PRIVILEGES) == {*metadata.tables, "alembic_version"}


@dataclass(frozen=True)
class Roles:
    owner_url: str
    service_url: str
    admin_url: str
    database: str


def _url(base: str, *, user: str, database: str, driver: str = "postgresql") -> str:
    return (
        make_url(base)
        .set(drivername=driver, username=user, password=None, database=database)
        .render_as_string(hide_password=False)
    )


async def _admin(sql: list[str]) -> None:
    assert POSTGRES_URL is not None
    conn = await asyncpg.connect(_url(POSTGRES_URL, user="postgres", database="postgres"))
    try:
        for statement in sql:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
def roles() -> Iterator[Roles]:
    if POSTGRES_URL is None:
        pytest.skip("database roles are PostgreSQL's")
    suffix = f"{os.getpid()}_{os.urandom(3).hex()}"
    owner, service, database = (
        f"ledger_owner_{suffix}",
        f"ledger_app_{suffix}",
        f"ledger_r_{suffix}",
    )
    asyncio.run(
        _admin(
            [
                f'CREATE ROLE "{owner}" LOGIN',
                f'CREATE ROLE "{service}" LOGIN',
                f'CREATE DATABASE "{database}" OWNER "{owner}"',
            ]
        )
    )
    yield Roles(
        owner_url=_url(POSTGRES_URL, user=owner, database=database),
        service_url=_url(POSTGRES_URL, user=service, database=database),
        admin_url=_url(POSTGRES_URL, user="postgres", database=database),
        database=database,
    )
    asyncio.run(
        _admin(
            [
                f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
                f'DROP ROLE IF EXISTS "{service}"',
                f'DROP ROLE IF EXISTS "{owner}"',
            ]
        )
    )


def _cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner(env=env).invoke(main, list(args))
    return result.exit_code, result.output + result.stderr + repr(result.exception)


def _env(tmp_path: Path, *, service: str, migration: str | None) -> dict[str, str]:
    env = {
        "LEDGER_DATA_DIR": str(tmp_path / "data"),
        "LEDGER_DATABASE_URL": service,
        "LEDGER_ARGON2_TIME_COST": "1",
        "LEDGER_ARGON2_MEMORY_COST_KIB": "64",
        "LEDGER_ARGON2_PARALLELISM": "1",
    }
    if migration is not None:
        env["LEDGER_MIGRATION_DATABASE_URL"] = migration
    return env


def test_init_refuses_a_service_role_that_could_disable_the_triggers(
    roles: Roles, tmp_path: Path
) -> None:
    code, output = _cli(_env(tmp_path, service=roles.owner_url, migration=None), "init")
    assert code == 1
    assert "LEDGER_MIGRATION_DATABASE_URL" in output
    code, output = _cli(_env(tmp_path, service=roles.admin_url, migration=roles.owner_url), "init")
    assert code == 1
    assert "superuser" in output
    assert not (tmp_path / "data").exists()  # refused before anything was made


async def _refused(conn: asyncpg.Connection, statement: str) -> str:
    with pytest.raises(asyncpg.PostgresError) as caught:
        await conn.execute(statement)
    return str(caught.value)


async def test_the_service_role_cannot_rewrite_erase_or_unprotect_the_audit_log(
    roles: Roles, tmp_path: Path
) -> None:
    env = _env(tmp_path, service=roles.service_url, migration=roles.owner_url)
    code, output = await asyncio.to_thread(_cli, env, "init")  # the CLI runs its own loop
    assert code == 0, output

    # The service works as its own role: it files, answers, integrates and signs.
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=roles.service_url,
        public_url="http://testserver",
        audit_sequencer_enabled=False,
        maintenance_enabled=False,
        **FAST_ARGON2,  # type: ignore[arg-type]
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            async with runtime.sessionmaker() as session:
                credential = await make_credential(session, runtime)
            token = await get_token(http, credential)
            report = payload(FrozenClock(dt.datetime.now(dt.UTC)))
            filed = await http.post("/v1/reports", json=report, headers=bearer(token))
            assert filed.status_code == 201, filed.text
        await runtime.audit.checkpoint()
    code, output = await asyncio.to_thread(_cli, env, "audit", "verify")
    assert code == 0, output

    conn = await asyncpg.connect(make_url(roles.service_url).render_as_string(hide_password=False))
    try:
        columns = {
            "audit_events": "tag",
            "audit_leaves": "event_id",
            "audit_nodes": "hash",
            "audit_checkpoints": "note",
        }
        for table, column in columns.items():
            for attack in (
                f"UPDATE {table} SET {column} = {column}",
                f"DELETE FROM {table}",
                f"TRUNCATE {table}",
                f"ALTER TABLE {table} DISABLE TRIGGER ALL",
                f"DROP TABLE {table} CASCADE",
            ):
                message = await _refused(conn, attack)
                assert "permission denied" in message or "must be owner" in message, attack
        replaced = await _refused(
            conn,
            "CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END; $$",
        )
        assert "must be owner" in replaced or "permission denied" in replaced
        floor = await conn.fetchval("SELECT floor_event_id FROM audit_sequencer WHERE id = 1")
        assert floor > 0
        back = await _refused(
            conn, f"UPDATE audit_sequencer SET floor_event_id = {floor - 1} WHERE id = 1"
        )
        assert "only moves forward" in back
        # An event not yet in the tree cannot be skipped by moving the floor past it.
        pending = await conn.fetchval(
            "INSERT INTO audit_events (recorded_at, tag, actor_type, outcome, body) "
            "VALUES (now(), 'x:y:z', 'system', 'ok', '{}') RETURNING id"
        )
        skipped = await _refused(
            conn, f"UPDATE audit_sequencer SET floor_event_id = {pending} WHERE id = 1"
        )
        assert "not in the tree" in skipped
        assert "permission denied" in await _refused(conn, "DELETE FROM audit_sequencer")
    finally:
        await conn.close()
