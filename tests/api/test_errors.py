"""Every error is RFC 9457 problem+json with a request id; no input produces a 500."""

from __future__ import annotations

import httpx
import pytest


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
