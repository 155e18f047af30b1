"""Routes served without FastAPI's per-request dependency machinery, declared like any other.

The risk query is called before every automatic refund, so its cost is paid millions of
times a day. Profiling showed that about half of the server's CPU per query went to
FastAPI's layers around a small piece of work: resolving the dependency tree, parsing
and validating the body through the framework, and serialising the answer again.

A ``DirectRoute`` is an ``APIRoute``. It is in the route table and matched there, the
OpenAPI description is generated from it, and the permission walk reads its declared
dependency, so the four are one object. Only its request handler differs: instead of
resolving the dependency tree per request, it calls the route's one permission
dependency itself (the same function FastAPI would call), then the endpoint with the
request and the principal. The endpoint reads its own body (``api.schemas.parse_body``)
and documents it with ``openapi_extra=json_body(Model)``.

A handler like this would silently skip anything else a declaration asks for (another
``Depends``, a query, header or body parameter, a dependency added where the router is
included). So a route that declares more is refused when it is built, not served
without it.

``DirectDispatch`` hands a request for a direct route's exact path and method straight
to that route object, from the app's own route table, inside the request-context and
request-limit middlewares and ahead of the framework's inner layers (exception
middleware, exit stacks, router). Measured on the risk query, those layers and the
contention retries cost about 40 µs of CPU per query, a fifth of the whole
(docs/benchmarks.md). The risk query writes no transaction that could lose a race, so
the retries have nothing to do for it; its errors are rendered by ``_serve`` with the
app's own handlers. Every other request passes through untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from fastapi import Request, Response
from fastapi import routing as fastapi_routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import PERMISSION_ATTR
from api.deps import get_runtime
from api.errors import error_response
from ledger.access.principals import Principal

Guard = Callable[..., Awaitable[Principal]]


class DirectRoute(APIRoute):
    """Add it to the app's own route table (``app.router.routes``), ahead of the included
    routers: it is then matched first and served by ``_serve`` below, with no more
    layers than the request needs. Included through a router, it still works, through
    FastAPI's per-inclusion wrapper around ``get_route_handler``."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self._handler = self.get_route_handler()
        self.app = self._serve

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self  # what routing would write: metrics and logs read the template
        request = Request(scope, receive, send)
        try:
            response = await self._handler(request)
        except Exception as exc:
            handled = await error_response(request, exc)
            if handled is None:
                raise  # to the last-resort handler, as from any route
            response = handled
        await response(scope, receive, send)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        guard = _guard(_effective(self).dependant, self.path)
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            principal = await guard(request, request.app.state.runtime)
            response: Response = await endpoint(request, principal)
            return response

        return handler


def _effective(route: APIRoute) -> Any:
    """The route as included (with the including router's prefix and dependencies),
    when FastAPI is building it for an inclusion; else the route itself."""
    context_var = getattr(fastapi_routing, "_effective_route_context_var", None)
    context = context_var.get() if context_var is not None else None
    if context is not None and getattr(context, "original_route", None) is route:
        return context
    return route


def _guard(dependant: Dependant | None, path: str) -> Guard:
    """The route's permission dependency; TypeError if it declares anything else."""

    def refuse(what: str) -> TypeError:
        return TypeError(
            f"{path}: a DirectRoute's endpoint is (request, principal) with one permission "
            f"dependency, and its handler would skip {what}; declare it on a plain route"
        )

    assert dependant is not None
    for kind in ("path_params", "query_params", "header_params", "cookie_params", "body_params"):
        if getattr(dependant, kind):
            raise refuse(kind.replace("_", " "))
    if len(dependant.dependencies) != 1:
        raise refuse("every dependency but the permission's")
    (permission,) = dependant.dependencies
    call = permission.call
    if call is None or getattr(call, PERMISSION_ATTR, None) is None:
        raise refuse("a dependency that is not a permission check")
    # The permission dependency itself takes (request, runtime) and nothing more.
    if [d.call for d in permission.dependencies] != [get_runtime] or any(
        getattr(permission, kind)
        for kind in ("path_params", "query_params", "header_params", "cookie_params")
    ):
        raise refuse("what the permission dependency declares besides the runtime")
    guard: Guard = call
    return guard


class DirectDispatch:
    """Serve the app's direct routes ahead of the framework's inner layers (see above)."""

    def __init__(self, app: ASGIApp, *, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self._routes = {
            (route.path, method): route
            for route in routes
            if isinstance(route, DirectRoute)
            for method in route.methods or ()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self._routes.get((scope["path"], scope["method"]))
            if route is not None:
                await route.app(scope, receive, send)
                return
        await self.app(scope, receive, send)
