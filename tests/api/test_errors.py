"""Every error is RFC 9457 problem+json with a request id; no input produces a 500."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from ledger.db import create_engine, create_sessionmaker
from ledger.logs import JsonFormatter
from ledger.runtime import Runtime


def _assert_problem(response: httpx.Response, status: int, type_: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["type"] == type_
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    _assert_problem(await client.get("/v1/nothing-here"), 404, "/problems/not-found")


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    _assert_problem(await client.delete("/v1/me"), 405, "/problems/method-not-allowed")


async def test_a_request_id_is_generated_when_absent(client: httpx.AsyncClient) -> None:
    first = await client.get("/healthz")
    second = await client.get("/healthz")
    assert len(first.headers["x-request-id"]) == 32
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_a_valid_incoming_request_id_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "refund-4711.retry-2"})
    assert response.headers["x-request-id"] == "refund-4711.retry-2"


@pytest.mark.parametrize("bad", ["has space", "x" * 200, "semi;colon", "<script>"])
async def test_an_unsafe_incoming_request_id_is_replaced(
    client: httpx.AsyncClient, bad: str
) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": bad})
    assert response.headers["x-request-id"] != bad
    assert len(response.headers["x-request-id"]) == 32


async def test_problems_never_echo_the_input(client: httpx.AsyncClient) -> None:
    secret_looking = "+8613800138000"
    response = await client.get(f"/v1/{secret_looking}")
    assert secret_looking not in response.text


async def test_an_unreachable_database_is_a_503_problem_with_retry_after(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    engine, sessionmaker, read = runtime.engine, runtime.sessionmaker, runtime.read_sessionmaker
    # Nothing listens on port 1: every connection attempt is refused.
    runtime.engine = create_engine("postgresql+asyncpg://ledger@127.0.0.1:1/ledger")
    runtime.sessionmaker = create_sessionmaker(runtime.engine)
    runtime.read_sessionmaker = create_sessionmaker(runtime.engine, read_only=True)
    try:
        response = await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("cl_someone", "lsk_secret"),
        )
    finally:
        await runtime.engine.dispose()
        runtime.engine, runtime.sessionmaker, runtime.read_sessionmaker = engine, sessionmaker, read
    body = _assert_problem(response, 503, "/problems/unavailable")
    assert response.headers["retry-after"] == "1"
    assert "retry" in str(body["detail"])


async def test_an_unexpected_error_is_a_500_problem_with_the_request_id(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/v1/test-broken")
    async def broken() -> None:
        raise RuntimeError("boom: phone:+8613800138000")

    response = await client.get("/v1/test-broken", headers={"X-Request-ID": "trace-500"})
    body = _assert_problem(response, 500, "/problems/internal")
    assert body["request_id"] == "trace-500"
    assert "8613800138000" not in response.text
    formatted = [JsonFormatter().format(r) for r in caplog.records]
    assert any('"exc_type": "RuntimeError"' in line for line in formatted)
    assert not any("8613800138000" in line for line in formatted)
