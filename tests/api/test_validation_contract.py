"""One validation contract on every route: strict types, unknown fields, malformed JSON,
media type and size, all answered alike and never with a 500."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api.schemas import RequestModel
from ledger.access.permissions import Role
from ledger.clock import FrozenClock
from ledger.reports.models import Report
from ledger.runtime import Runtime
from tests.api.test_audit_api import sign_in
from tests.api.test_reports import Member, payload
from tests.factories import make_user

JSON_ROUTES = [
    "/v1/reports",
    "/v1/reports:batch",
    "/v1/risk/query",
    "/v1/risk/query:batch",
    "/v1/disputes",
    "/v1/subjects/disclosure",
    "/v1/subjects/statements",
    "/v1/pseudonyms:evaluate",
]


def _is_validation_problem(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "/problems/validation"
    assert field in [e["field"] for e in body["errors"]], body


@pytest.mark.parametrize("amount", [True, "500", 12.0, None])
async def test_an_amount_is_a_json_integer_and_nothing_else(
    acme: Member, clock: FrozenClock, runtime: Runtime, amount: object
) -> None:
    body = payload(clock)
    body["amount_minor"] = amount
    _is_validation_problem(await acme.post("/v1/reports", body), "amount_minor")
    async with runtime.read_sessionmaker() as read:
        assert await read.scalar(sa.select(sa.func.count()).select_from(Report)) == 0


def test_every_number_in_a_request_model_is_strict() -> None:
    # A new request field typed plain ``int`` would take ``true`` and ``"500"`` again.
    def models(cls: type[BaseModel]) -> list[type[BaseModel]]:
        return [cls, *itertools.chain.from_iterable(models(c) for c in cls.__subclasses__())]

    found = models(RequestModel)
    assert len(found) > 10  # the walk sees the request models at all
    loose = [
        f"{model.__name__}.{name}"
        for model in found
        for name, info in model.model_fields.items()
        if info.annotation in (int, float, bool, int | None, float | None)
        and not any(type(m).__name__ == "Strict" for m in info.metadata)
    ]
    assert loose == []


@pytest.mark.parametrize("path", JSON_ROUTES)
async def test_malformed_json_unknown_fields_and_wrong_shapes_are_one_answer(
    acme: Member, path: str
) -> None:
    headers = {**acme.headers, "Content-Type": "application/json"}
    broken = await acme.http.post(path, content=b'{"subject": ', headers=headers)
    _is_validation_problem(broken, "body")
    assert broken.json()["errors"][0]["detail"].startswith("the body is not valid JSON")
    unknown = await acme.post(path, {"no_such_field": 1})
    _is_validation_problem(unknown, "no_such_field")
    _is_validation_problem(await acme.post(path, [1, 2, 3]), "body")


async def test_json_nested_a_thousand_deep_is_refused_not_a_500(acme: Member) -> None:
    deep = b'{"subject":' * 1000 + b"1" + b"}" * 1000
    for path in ("/v1/risk/query", "/v1/reports", "/v1/reports:batch"):
        headers = {**acme.headers, "Content-Type": "application/json"}
        response = await acme.http.post(path, content=deep, headers=headers)
        _is_validation_problem(response, "body")


@pytest.mark.parametrize("path", JSON_ROUTES)
async def test_a_body_that_is_not_declared_json_is_415(acme: Member, path: str) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = dict(acme.headers)
        if content_type:
            headers["Content-Type"] = content_type
        response = await acme.http.post(path, content=b'{"a": 1}', headers=headers)
        assert response.status_code == 415, response.text
        assert "Content-Type: application/json" in response.json()["detail"]


async def test_bodies_are_capped_per_route_before_they_are_read(acme: Member) -> None:
    async def chunks(size: int) -> AsyncIterator[bytes]:
        for _ in range(size // 8192):
            yield b" " * 8192

    headers = {**acme.headers, "Content-Type": "application/json"}
    for path in ("/v1/reports", "/v1/risk/query", "/v1/disputes"):
        declared = await acme.http.post(path, content=b" " * 70_000, headers=headers)
        assert declared.status_code == 413, declared.text
        streamed = await acme.http.post(path, content=chunks(80 * 1024), headers=headers)
        assert streamed.status_code == 413, streamed.text
    # A batch may be larger than a single report: 200 KB of valid JSON gets past the cap.
    big = b'{"reports": [' + b" " * 200_000 + b"]}"
    batch = await acme.http.post("/v1/reports:batch", content=big, headers=headers)
    _is_validation_problem(batch, "reports")


# --- every route's path and query parameters, fed extreme values -----------------------

EXTREMES = [
    "0",
    "-1",
    "-128",
    str(2**63),
    str(2**63 - 1),
    str(-(2**63) - 1),
    "9" * 400,
    "1e309",
    "NaN",
    "",
    " ",
    "%00",
    "\u0000",
    "a" * 5000,
    "../../etc/passwd",
    "2026-13-45T99:99:99Z",
    "9999-12-31T23:59:59+14:00",
    "0001-01-01T00:00:00-14:00",
    "😀" * 20,
    "[]",
    "{}",
]


def _params(dependant: Dependant) -> tuple[list[str], list[str]]:
    """The path and query parameters of a route and of every dependency it has."""
    path = [p.alias for p in dependant.path_params]
    query = [p.alias for p in dependant.query_params]
    for sub in dependant.dependencies:
        sub_path, sub_query = _params(sub)
        path += sub_path
        query += sub_query
    return list(dict.fromkeys(path)), list(dict.fromkeys(query))


def _routes(app: FastAPI) -> list[tuple[str, str, list[str], list[str]]]:
    return [
        (method, context.path, *_params(context.dependant))
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute) and context.path
        for method in sorted((context.methods or set()) - {"HEAD"})
    ]


async def test_no_path_or_query_value_makes_any_route_fail_with_500(
    app: FastAPI,
    client: httpx.AsyncClient,
    acme: Member,
    session: AsyncSession,
    runtime: Runtime,
) -> None:
    await make_user(session, runtime, username="extreme-auditor", role=Role.AUDITOR)
    tokens = [acme.headers, {"Authorization": f"Bearer {await sign_in(client, 'extreme-auditor')}"}]
    routes = _routes(app)
    assert len(routes) > 25  # the walk sees the API
    sent = 0
    for (method, template, path_params, query_params), headers in itertools.product(routes, tokens):
        for value in EXTREMES:
            # Each path parameter in turn takes the value; the others a plausible one.
            targets: list[tuple[str | None, str | None]] = [(p, None) for p in path_params]
            targets += [(None, q) for q in query_params]
            for path_param, query_param in targets or [(None, None)]:
                path = template
                for name in path_params:
                    filler = value if name == path_param else "1"
                    path = path.replace("{" + name + "}", quote(filler, safe="") or "x")
                params = {query_param: value} if query_param else {}
                response = await client.request(
                    method,
                    path,
                    params=params,
                    headers={**headers, "Content-Type": "application/json"},
                    content=b"{}" if method in {"POST", "PUT", "PATCH"} else None,
                )
                sent += 1
                assert response.status_code < 500, (method, path, params, response.text)
    assert sent > 1000
