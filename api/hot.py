"""The hot path: ``POST /v1/risk/query`` served straight from the ASGI scope.

Platforms call the risk query before every automatic refund, so its cost is paid
millions of times a day. Profiling showed that about half of the server's CPU per
query went to FastAPI's layers around it: route matching across every router,
dependency resolution, and the framework's own middleware. The work itself is small.

This middleware sits just inside ``RequestContextMiddleware`` (so the request id,
metrics and access log are unchanged). It answers that one method and path itself,
calling the same functions as the documented FastAPI route: ``authenticate`` (the
permission check every route declares) and ``answer_query``. Errors become the same
problem responses through ``error_response``. An error no handler expects propagates
to the last-resort handler, as from any route. Every other request passes through
untouched.

A test runs the suite's risk cases through both and compares the answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import authenticate_client
from api.errors import error_response
from api.routers.risk import answer_query
from ledger.access.permissions import Permission
from ledger.runtime import Runtime

PATH = "/v1/risk/query"


@dataclass(frozen=True, slots=True)
class _Route:
    """What metrics, logs and refusal audits read of ``scope["route"]``: its template."""

    path: str


class HotPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._route = _Route(PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = self._route
        request = Request(scope, receive)
        runtime: Runtime = scope["app"].state.runtime
        try:
            principal = await authenticate_client(request, runtime, Permission.RISK_READ)
            response = await answer_query(runtime, principal, await request.body())
        except Exception as exc:
            handled = await error_response(request, exc)
            if handled is None:
                raise
            response = handled
        await response(scope, receive, send)
