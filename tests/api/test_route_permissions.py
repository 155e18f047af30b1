"""Deny by default: every route declares a permission unless it is on the allowlist."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

from api.app import PUBLIC_ROUTES, create_app
from api.auth import PERMISSION_ATTR
from ledger.access.permissions import Permission
from ledger.config import Settings


def _permissions(dependant: Dependant) -> set[Permission]:
    found: set[Permission] = set()
    permission = getattr(dependant.call, PERMISSION_ATTR, None)
    if permission is not None:
        found.add(permission)
    for sub in dependant.dependencies:
        found |= _permissions(sub)
    return found


def _route_permissions(app: FastAPI) -> dict[str, set[Permission]]:
    table: dict[str, set[Permission]] = {}
    for context in iter_route_contexts(app.routes):
        dependant: Any = getattr(context, "dependant", None)
        path = context.path
        assert path is not None
        table[path] = _permissions(dependant) if dependant is not None else set()
    return table


def test_every_route_declares_a_permission_or_is_public(tmp_path: Any) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    table = _route_permissions(app)
    assert "/v1/me" in table  # the walk sees routes of included routers
    unguarded = sorted(
        path for path, perms in table.items() if not perms and path not in PUBLIC_ROUTES
    )
    assert unguarded == [], f"routes with no permission check: {unguarded}"


def test_public_routes_declare_no_permission(tmp_path: Any) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    table = _route_permissions(app)
    assert {path for path in PUBLIC_ROUTES if table.get(path)} == set()
    # Every allowlisted route exists, so the allowlist cannot silently grow stale.
    assert set(PUBLIC_ROUTES) <= set(table)


def test_the_walk_catches_a_route_added_without_a_permission(tmp_path: Any) -> None:
    app = create_app(Settings(data_dir=tmp_path))

    @app.get("/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        return {}

    table = _route_permissions(app)
    assert table["/v1/forgotten"] == set()
