"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ledger import db
from ledger.db import create_engine
from ledger.evidence.upkeep import Indexes
from ledger.runtime import Runtime


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_the_schema_is_at_head(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await runtime.evidence.indexes.refresh()  # the load started with the app, or ends here
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["schema_revision"] == body["expected_revision"] == db.head_revision()
    assert body["evidence_index"] == "loaded"


async def test_readyz_is_503_until_the_fingerprint_index_is_loaded(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await runtime.evidence.indexes.close()
    runtime.evidence.indexes = Indexes(runtime.read_sessionmaker, None)  # not started
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["evidence_index"] == "loading"
    runtime.evidence.indexes.start()
    for _ in range(200):  # bounded: an empty database loads in milliseconds
        if runtime.evidence.indexes.loaded:
            break
        await asyncio.sleep(0.01)
    assert (await client.get("/readyz")).status_code == 200


async def test_readyz_is_503_when_the_schema_is_behind(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await db.downgrade(runtime.engine, "base")
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["schema_revision"] is None


async def test_readyz_is_503_when_the_database_is_unreachable(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    engine = runtime.engine
    # Nothing listens on port 1: the connection is refused at once.
    runtime.engine = create_engine("postgresql+asyncpg://ledger@127.0.0.1:1/ledger")
    try:
        response = await client.get("/readyz")
    finally:
        await runtime.engine.dispose()
        runtime.engine = engine
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await client.get("/healthz")
    await client.get("/v1/me")
    await client.get("/v1/does-not-exist")
    text = (await client.get("/metrics")).text
    samples = {
        (s.labels.get("route"), s.labels.get("status")): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "ledger_http_requests"
        for s in family.samples
        if s.name == "ledger_http_requests_total"
    }
    assert samples[("/healthz", "200")] == 3
    assert samples[("/v1/me", "401")] == 1
    assert samples[("<unmatched>", "404")] == 1
    assert "ledger_http_request_duration_seconds_bucket" in text
