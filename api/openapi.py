"""The OpenAPI description as the contract: generated from the routes, then completed
from what the service itself knows, so that the two cannot drift.

FastAPI describes what each route declares: its parameters, body and main answer.
This module adds what the route table knows and FastAPI does not:

- ``securitySchemes``: OAuth 2.0 client credentials (the token URL and every scope) for
  member clients, and bearer tokens for console users (``POST /v1/auth/token``); and on
  each operation the ``security`` its permission allows (api/auth.py's
  ``__ledger_permission__``, the same attribute the deny-by-default walk reads).
- Every problem an operation can answer, as ``application/problem+json`` with the one
  ``Problem`` schema and the ``type`` values for that status (api/errors.py's catalogue):
  401/403/400 wherever a token is needed, 413 and 415 where a body is read, 422 and 503
  everywhere, and what a route declares with ``problems(...)`` (404, 409, 429).
- Stable operation ids: the endpoint's own name (``file_report``, ``risk_query``).

The service serves Swagger UI and ReDoc from its own copies of their assets (the
``fastapi-offline`` package's), so ``/docs`` works on a network with no internet.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.staticfiles import StaticFiles

from api.auth import CLIENT_ONLY_ATTR, PERMISSION_ATTR
from api.errors import CATALOGUE, PROBLEM_JSON
from ledger.access.permissions import (
    ROLE_PERMISSIONS,
    SCOPE_PERMISSIONS,
    Permission,
    permissions_for_scopes,
    scope_for,
)

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSET_PATH = "/docs/assets"

SCOPE_TEXT = {
    "reports:write": "file, withdraw and give notice of your member's reports",
    "risk:read": "query a buyer's risk before a refund",
    "disputes:write": "open disputes for buyers, and answer those on your reports",
    "pseudonyms:evaluate": "have buyer identifiers turned into pseudonyms (VOPRF)",
    "subjects:disclose": "give a buyer their own file, and add their statements",
    "evidence:check": "check claim photos' fingerprints against forged evidence and "
    "your listing photos",
    "webhooks:manage": "register the endpoints the ledger sends your events to, and read "
    "and replay their deliveries",
    "markers:write": "place, renew and remove a buyer's protective marker at their request",
}

OAUTH2 = "memberClient"
BEARER = "consoleUser"


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the problems a route answers besides the common ones."""
    return {status: {"description": _describe(status)} for status in statuses}


def _describe(status: int) -> str:
    found = [p for p in CATALOGUE if p.status == status]
    return "; ".join(f"`/problems/{p.slug}`: {p.meaning}" for p in found) or "a problem"


def _permission(dependant: Any) -> tuple[Permission | None, bool]:
    """The permission an operation needs, and whether only member clients may call it."""
    if dependant is None:
        return None, False
    stack = [dependant]
    while stack:
        node = stack.pop()
        permission = getattr(node.call, PERMISSION_ATTR, None)
        if permission is not None:
            return permission, bool(getattr(node.call, CLIENT_ONLY_ATTR, False))
        stack.extend(node.dependencies)
    return None, False


def _security(permission: Permission, *, client_only: bool) -> list[dict[str, list[str]]]:
    options: list[dict[str, list[str]]] = []
    scope = scope_for(permission)
    if scope is not None:
        options.append({OAUTH2: [scope.value]})
    elif permission in permissions_for_scopes(frozenset()):  # every member client
        options.append({OAUTH2: []})
    if not client_only and any(permission in held for held in ROLE_PERMISSIONS.values()):
        options.append({BEARER: []})
    return options


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "An RFC 9457 problem: what went wrong and what to do about it.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {
                "type": "string",
                "enum": sorted({f"/problems/{p.slug}" for p in CATALOGUE}),
                "description": "the kind of problem; docs/api.md explains each",
            },
            "title": {"type": "string", "description": "the kind, in words"},
            "status": {"type": "integer", "description": "the HTTP status, repeated"},
            "detail": {
                "type": "string",
                "description": "what to fix, for this request (never the input echoed)",
            },
            "request_id": {
                "type": ["string", "null"],
                "description": "the X-Request-ID of the request, for the operators",
            },
            "errors": {
                "type": "array",
                "description": "one entry per field that cannot be accepted (422)",
                "items": {
                    "type": "object",
                    "required": ["field", "detail"],
                    "properties": {
                        "field": {"type": "string", "description": "the field, as sent"},
                        "detail": {"type": "string", "description": "what is wrong with it"},
                    },
                },
            },
            "current_state": {
                "type": "string",
                "description": "the object's state that forbids the change (409)",
            },
            "existing_report_id": {
                "type": "string",
                "description": "the report already filed under this case_ref (409)",
            },
            "required_scope": {
                "type": "string",
                "description": "the scope the token lacks (403)",
            },
        },
    }


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": _describe(status),
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _common_statuses(route: APIRoute, *, protected: bool) -> list[int]:
    statuses = [422, 503]
    if protected:
        statuses += [400, 401, 403]
    reads_body = route.body_field is not None or "requestBody" in (route.openapi_extra or {})
    if reads_body:
        statuses += [413, 415]
    return statuses


def _complete(operation: dict[str, Any], route: APIRoute) -> None:
    permission, client_only = _permission(route.dependant)
    if permission is not None:
        operation["security"] = _security(permission, client_only=client_only)
    operation["operationId"] = route.name
    responses: dict[str, Any] = operation.setdefault("responses", {})
    statuses = {int(s) for s in responses if s.isdigit() and int(s) >= 400}
    statuses |= set(_common_statuses(route, protected=permission is not None))
    for status in sorted(statuses):
        declared = responses.get(str(status), {})
        if _own_content(declared):
            continue  # an answer of its own (the OAuth token endpoint's RFC 6749 errors)
        responses[str(status)] = _problem_response(status) | {
            k: v for k, v in declared.items() if k not in {"content", "description"}
        }


def _own_content(declared: dict[str, Any]) -> bool:
    """Whether a declared error response has a body of its own, not FastAPI's generated
    422 (replaced by the problem) and not yet the problem."""
    content = declared.get("content") or {}
    refs = {str(c.get("schema", {}).get("$ref", "")) for c in content.values()}
    return (
        bool(content)
        and PROBLEM_JSON not in content
        and not any(r.endswith("/HTTPValidationError") for r in refs)
    )


def _operations(app: FastAPI) -> Iterable[tuple[str, str, APIRoute]]:
    for context in iter_route_contexts(app.routes):
        route = getattr(context, "original_route", context)
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in route.methods or ():
                yield str(context.path), method.lower(), route


def contract(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for generated in ("HTTPValidationError", "ValidationError"):
        schemas.pop(generated, None)
    schemas["Problem"] = _problem_schema()
    components["securitySchemes"] = {
        OAUTH2: {
            "type": "oauth2",
            "description": "A member platform's client credential (ledger credentials issue).",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "/oauth/token",
                    "scopes": {scope.value: SCOPE_TEXT[scope.value] for scope in SCOPE_PERMISSIONS},
                }
            },
        },
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A console user's token, from POST /v1/auth/token.",
        },
    }
    for path, method, route in _operations(app):
        operation = schema["paths"].get(path, {}).get(method)
        if operation is not None:
            _complete(operation, route)
    app.openapi_schema = schema
    return schema


# Nothing leaves the ledger's own origin: ReDoc would fetch its "powered by" logo from a
# CDN, and neither reader needs anything from another site.
_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'"
)


def _here_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = _CSP
    return page


def install(app: FastAPI) -> None:
    """The contract at /openapi.json, and the two readers of it, served from here."""
    app.openapi = lambda: contract(app)  # type: ignore[method-assign]
    app.mount(ASSET_PATH, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(_: Request) -> HTMLResponse:
        return _here_only(
            get_swagger_ui_html(
                openapi_url="/openapi.json",
                title=f"{app.title}: API",
                swagger_js_url=f"{ASSET_PATH}/swagger-ui-bundle.js",
                swagger_css_url=f"{ASSET_PATH}/swagger-ui.css",
                swagger_favicon_url=f"{ASSET_PATH}/favicon.png",
            )
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(_: Request) -> HTMLResponse:
        return _here_only(
            get_redoc_html(
                openapi_url="/openapi.json",
                title=f"{app.title}: API",
                redoc_js_url=f"{ASSET_PATH}/redoc.standalone.js",
                redoc_favicon_url=f"{ASSET_PATH}/favicon.png",
                with_google_fonts=False,
            )
        )
