"""Real databases for the tests, each one built by the real migrations.

The migrations run once per session into a template; every test then gets its own
copy (a file copy for SQLite, ``CREATE DATABASE ... TEMPLATE`` for PostgreSQL), so a
test can commit, use several connections and run concurrently like the service does.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from ledger import db

POSTGRES_URL = os.environ.get("LEDGER_TEST_POSTGRES_URL") or None
REQUIRE_POSTGRES = os.environ.get("LEDGER_TEST_REQUIRE_POSTGRES") == "1"

BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])

_counter = itertools.count()


def _dsn(url: str, database: str | None = None) -> str:
    """A plain libpq DSN for asyncpg, optionally pointing at another database."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def _async_url(url: str, database: str) -> str:
    return (
        make_url(url)
        .set(drivername="postgresql+asyncpg", database=database)
        .render_as_string(hide_password=False)
    )


async def _migrate(url: str) -> None:
    engine = db.create_engine(url, pool_size=1)
    try:
        await db.upgrade(engine)
    finally:
        await engine.dispose()


class SqliteTemplate:
    def __init__(self, directory: Path) -> None:
        self.path = directory / "template.db"
        asyncio.run(_migrate(f"sqlite+aiosqlite:///{self.path}"))

    def clone(self, directory: Path) -> str:
        target = directory / "ledger.db"
        shutil.copyfile(self.path, target)
        return f"sqlite+aiosqlite:///{target}"

    def drop(self, url: str) -> None:
        """Files live in the test's tmp_path; nothing to do."""


class PostgresTemplate:
    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = f"ledger_tpl_{os.getpid()}"
        asyncio.run(self._create())

    async def _admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(_dsn(self.admin_url))

    async def _create(self) -> None:
        conn = await self._admin()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await conn.close()
        await _migrate(_async_url(self.admin_url, self.name))

    def clone(self, _directory: Path) -> str:
        name = f"ledger_t_{os.getpid()}_{next(_counter)}"

        async def create() -> None:
            conn = await self._admin()
            try:
                await conn.execute(
                    f'CREATE DATABASE "{name}" TEMPLATE "{self.name}" STRATEGY FILE_COPY'
                )
            finally:
                await conn.close()

        asyncio.run(create())
        return _async_url(self.admin_url, name)

    def drop(self, url: str) -> None:
        name = make_url(url).database

        async def drop() -> None:
            conn = await self._admin()
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        asyncio.run(drop())

    def close(self) -> None:
        self.drop(_async_url(self.admin_url, self.name))


def empty_postgres_database(admin_url: str) -> tuple[str, PostgresTemplate]:
    """An unmigrated PostgreSQL database (for migration round trips)."""
    template = PostgresTemplate.__new__(PostgresTemplate)
    template.admin_url = admin_url
    template.name = f"ledger_empty_{os.getpid()}_{next(_counter)}"

    async def create() -> None:
        conn = await template._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{template.name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return _async_url(admin_url, template.name), template
