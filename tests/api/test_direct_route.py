"""The risk query has one door: the route in the table is the one that serves it, the one
the permission walk reads, and the one OpenAPI describes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.routing import iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from api.auth import authorize, authorize_client
from api.deps import RuntimeDep
from api.direct import DirectRoute
from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal
from ledger.config import Settings
from ledger.runtime import Runtime
from tests.api.test_route_permissions import _route_permissions
from tests.factories import bearer, get_token, make_credential

Reader = Annotated[ClientPrincipal, Depends(authorize_client(Permission.RISK_READ))]


def _served(app: FastAPI, path: str) -> list[Any]:
    return [c for c in iter_route_contexts(app.routes) if c.path == path]


def test_the_risk_query_is_one_direct_route_with_its_permission(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    (context,) = _served(app, "/v1/risk/query")
    assert isinstance(context.original_route, DirectRoute)
    assert _route_permissions(app)["/v1/risk/query"] == {Permission.RISK_READ}
    operation = app.openapi()["paths"]["/v1/risk/query"]["post"]
    assert "requestBody" in operation


async def test_it_answers_through_the_route_table(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    token = await get_token(client, await make_credential(session, runtime))
    answer = await client.post("/v1/risk/query", json={}, headers=bearer(token))
    assert answer.status_code == 422  # parsed and refused by the endpoint itself
    refused = await client.post("/v1/risk/query", json={})
    assert refused.status_code == 401  # the permission ran first


def _build(endpoint: Any, *, dependencies: list[Any] | None = None) -> None:
    router = APIRouter(dependencies=dependencies or [])
    router.add_api_route("/x", endpoint, methods=["POST"], route_class_override=DirectRoute)
    FastAPI().include_router(router, prefix="/v1")


async def _extra_query(request: Request, principal: Reader, limit: int = 10) -> Response:
    raise AssertionError


async def _extra_dependency(request: Request, principal: Reader, runtime: RuntimeDep) -> Response:
    raise AssertionError


async def _no_permission(request: Request) -> Response:
    raise AssertionError


async def _fine(request: Request, principal: Reader) -> Response:
    raise AssertionError


@pytest.mark.parametrize("endpoint", [_extra_query, _extra_dependency, _no_permission])
def test_a_direct_route_refuses_a_declaration_its_handler_would_skip(endpoint: Any) -> None:
    with pytest.raises(TypeError, match="DirectRoute"):
        _build(endpoint)


def test_a_dependency_added_where_the_router_is_included_is_refused_too() -> None:
    _build(_fine)  # on its own, the declaration is served whole
    with pytest.raises(TypeError, match="DirectRoute"):
        _build(_fine, dependencies=[Depends(authorize(Permission.AUDIT_READ))])
