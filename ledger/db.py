"""Engines, sessions, the declarative base, and the migrations that build the schema.

The request (or the CLI command) owns the transaction: services receive an
``AsyncSession`` and never commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, Table, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 10_000

# Execution options marking connections whose transactions only read, and read
# transactions that must see one snapshot.
READ_ONLY = "ledger_read_only"
SNAPSHOT = "ledger_snapshot"


class Base(DeclarativeBase):
    """Declarative base for every model; constraint names follow one convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def create_engine(
    url: str, *, pool_size: int = 20, max_overflow: int = 0, pool_timeout: float = 30.0
) -> AsyncEngine:
    """An async engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    parsed = make_url(url)
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout
    )
    if parsed.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    return engine


def table_of(model: type[Base]) -> Table:
    """A mapped class's table, for Core statements (no ORM machinery per row)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def postgres_dsn(url: str) -> str | None:
    """The libpq DSN for a PostgreSQL ``url`` (for asyncpg used directly), else None."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return None
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 driver (its legacy mode neither
        # begins before SELECT nor makes DDL transactional), then set the pragmas.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Readers never block each other (WAL). A writing transaction takes the write
        # lock at BEGIN, where the busy timeout applies, rather than failing with
        # "database is locked" when a read snapshot later tries to upgrade. So a write
        # transaction must not do slow work (argon2) while it is open.
        options = conn.get_execution_options()
        if options.get(SNAPSHOT):
            conn.exec_driver_sql("BEGIN")
        elif not options.get(READ_ONLY):
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def insert_or_ignore(session: AsyncSession, table: Any, *conflict_columns: str) -> Any:
    """``INSERT ... ON CONFLICT (columns) DO NOTHING`` for the session's database.

    Race-safe without a savepoint: a concurrent duplicate makes the insert return no
    row instead of failing the transaction. (Savepoints cost a server-side prepare
    each with asyncpg, several milliseconds here.)
    """
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert  # noqa: PLC0415
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]  # noqa: PLC0415
    return insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))


def create_snapshot_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Read-only sessions that see one snapshot from start to end, for long reads
    (verification, exports): REPEATABLE READ READ ONLY on PostgreSQL, a deferred
    transaction on SQLite (no write lock taken)."""
    if engine.dialect.name == "sqlite":
        bind = engine.execution_options(**{SNAPSHOT: True})
    else:
        bind = engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    return async_sessionmaker(bind, expire_on_commit=False, autoflush=False)


def create_sessionmaker(
    engine: AsyncEngine, *, read_only: bool = False
) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit.

    ``read_only`` sessions share the engine's pool and open no transaction: each
    statement reads its own consistent snapshot, and no BEGIN/ROLLBACK round trips
    or SQLite write lock are spent on them. A read that needs one snapshot across
    several statements uses an ordinary session. Never write through one: on
    PostgreSQL each statement would commit on its own.
    """
    if not read_only:
        return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    options: dict[str, object] = {READ_ONLY: True}
    if engine.dialect.name != "sqlite":
        options["isolation_level"] = "AUTOCOMMIT"
    bind = engine.execution_options(**options)
    return async_sessionmaker(bind, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session whose work commits when the block ends, or rolls back on error."""
    async with sessionmaker() as session, session.begin():
        yield session


# --- migrations -------------------------------------------------------------------


def migrations_dir() -> Path:
    """Where the alembic scripts are: inside an installed wheel, or in the checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_migrations", here.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise RuntimeError("alembic migrations not found next to the ledger package")


def alembic_config() -> Config:
    """An alembic configuration that needs no alembic.ini on disk."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return cfg


def head_revision() -> str:
    """The newest migration revision known to this code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _run(connection: Connection, fn: Any, *args: Any) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    fn(cfg, *args)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database up to ``revision``."""
    async with engine.begin() as conn:
        await conn.run_sync(_run, command.upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Migrate the database down to ``revision`` (``base`` empties it)."""
    async with engine.begin() as conn:
        await conn.run_sync(_run, command.downgrade, revision)


async def check_drift(engine: AsyncEngine) -> None:
    """Raise ``alembic.util.AutogenerateDiffsDetected`` if the models and schema differ."""
    async with engine.connect() as conn:
        await conn.run_sync(_run, command.check)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None if it was never migrated."""

    def _current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(_current)
