"""Fixtures: a real database per test (SQLite always, PostgreSQL when configured), the
real app served through ASGI, real keys and real argon2id (with test-sized costs)."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from ledger.access import keys
from ledger.clock import FrozenClock, SystemClock
from ledger.config import Settings
from ledger.runtime import KEY_FILES, KEY_RINGS, Runtime
from tests.databases import (
    BACKENDS,
    POSTGRES_URL,
    REQUIRE_POSTGRES,
    PostgresTemplate,
    SqliteTemplate,
)

# Cheap argon2id parameters keep the suite fast; one test raises them to check rehashing.
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_cost_kib": 64, "argon2_parallelism": 1}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Collect what the suite left behind while every extension module is still whole,
    then freeze the rest out of the collector's sight. Twice a full run passed and then
    crashed in the garbage collection of the interpreter's exit (a native object
    freed after its module's state: "Garbage-collecting, no Python frame"); coverage
    still writes its data afterwards, at exit."""
    gc.collect()
    gc.freeze()


def pytest_sessionstart(session: pytest.Session) -> None:
    if REQUIRE_POSTGRES and not POSTGRES_URL:
        raise pytest.UsageError(
            "LEDGER_TEST_REQUIRE_POSTGRES=1 but LEDGER_TEST_POSTGRES_URL is not set"
        )


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    return SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgresql_template() -> Iterator[PostgresTemplate]:
    assert POSTGRES_URL is not None
    template = PostgresTemplate(POSTGRES_URL)
    yield template
    template.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    template: SqliteTemplate | PostgresTemplate = request.getfixturevalue(f"{backend}_template")
    url = template.clone(tmp_path)
    yield url
    template.drop(url)


@pytest.fixture
def clock() -> FrozenClock:
    """Now, standing still until a test moves it."""
    return FrozenClock(SystemClock().now().replace(microsecond=0))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        public_url="http://testserver",
        # Tests integrate explicitly; one test runs the background loop on its own.
        audit_sequencer_enabled=False,
        maintenance_enabled=False,
        webhook_delivery_enabled=False,
        # No role needs a second factor unless a test says so (tests/console/
        # test_second_factor.py); the default (operators) is tested there.
        second_factor_roles="",
        **FAST_ARGON2,  # type: ignore[arg-type]
    )
    for ring in KEY_RINGS:
        keys.ensure_ring(settings.resolved_key_dir / ring, now=dt.datetime.now(dt.UTC))
    for module in KEY_FILES:
        module.ensure_key(settings.resolved_key_dir / module.KEY_DIR, now=dt.datetime.now(dt.UTC))
    return settings


@pytest.fixture
async def app(settings: Settings, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        listener = app.state.runtime.access_listener
        if listener is not None:  # PostgreSQL: every test runs with the access cache on
            await asyncio.wait_for(listener.listening(), timeout=10)
        live = app.state.runtime.live_listener
        if live is not None:  # and with the live subjects loaded (ledger/scoring/live.py)
            await asyncio.wait_for(live.listening(), timeout=10)
        yield app


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    value: Runtime = app.state.runtime
    return value


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def session(runtime: Runtime) -> AsyncIterator[AsyncSession]:
    """A session for arranging data; factories commit what they make."""
    async with runtime.sessionmaker() as session:
        yield session
