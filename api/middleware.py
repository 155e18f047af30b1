"""Request id, access log and Prometheus metrics, as one pure ASGI middleware.

Pure ASGI rather than ``BaseHTTPMiddleware``: it adds no task or stream per request.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from fastapi.routing import iter_route_contexts
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import (
    BodyTooLarge,
    internal_error_response,
    problem_response,
    too_large_response,
    validation_response,
)
from ledger.logs import request_id_var

access_log = logging.getLogger("ledger.access")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED = "<unmatched>"
MAX_LABEL_SETS = 1000


class Metrics:
    """The service's own registry, so that several apps in one process do not clash."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ledger_http_requests_total",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ledger_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status.",
            ["method", "route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        # ``labels()`` looks its child up under a lock and re-checks every label on each
        # call: a few percent of the risk query's CPU. The children are kept here instead.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            labels = (method, route, str(status))
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            if len(self._children) < MAX_LABEL_SETS:  # methods and statuses are few
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def _route_template(scope: Scope) -> str:
    # Route templates, never raw paths: bounded label values, no identifiers in metrics.
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # 128 random bits as hex, like uuid4().hex at a fifth of the cost.
        request_id = _incoming_request_id(scope) or os.urandom(16).hex()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        status_sent = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, status_sent
            if message["type"] == "http.response.start":
                status = message["status"]
                status_sent = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # noqa: BLE001  (the last resort: answer, never crash)
            # Unhandled errors are answered here, inside the request's context, so the
            # problem and the log line carry the request id. The type only is logged.
            access_log.error("unhandled error", exc_info=exc)
            if status_sent is False:
                await internal_error_response()(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"]
            self.metrics.observe(method, route, status, elapsed)
            access_log.info(
                "request",
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                },
            )
            request_id_var.reset(token)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            try:
                text = value.decode("ascii")
            except UnicodeDecodeError:
                return None
            return text if _VALID_REQUEST_ID.match(text) else None
    return None


DEFAULT_BODY_LIMIT = 64 * 1024
BODY_LIMIT_KEY = "x-body-limit-bytes"  # a route's own cap, declared in its openapi_extra
_JSON_TYPES = (b"application/json", b"application/problem+json")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def body_limit(bytes_: int) -> dict[str, Any]:
    """``openapi_extra`` for a route whose bodies may be larger than the default cap."""
    return {BODY_LIMIT_KEY: bytes_}


def route_body_limits(routes: list[Any]) -> dict[str, int]:
    """The caps that routes declare, by path (routes with path parameters get the
    default: none of them takes a large body)."""
    limits = {}
    for context in iter_route_contexts(routes):
        extra = getattr(context.original_route, "openapi_extra", None) or {}
        path = context.path
        if BODY_LIMIT_KEY in extra and path is not None and "{" not in path:
            limits[path] = int(extra[BODY_LIMIT_KEY])
    return limits


class RequestLimits:
    """Size and media type of request bodies, checked before anything reads them.

    Every body has a cap (413 past it), declared per route and 64 KiB by default, checked
    against ``Content-Length`` and again while the body streams in, so a body without a
    length cannot exceed it either. A body sent to the JSON API (``/v1/``) must say
    ``Content-Type: application/json`` (415 otherwise): a form or text body there is a
    client bug that deserves its own answer, not a confusing validation error.
    """

    def __init__(self, app: ASGIApp, *, limits: dict[str, int]) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%00" in scope["query_string"]:
            # No text the ledger stores or searches may hold a NUL (PostgreSQL refuses it).
            detail = "query parameters may not contain the NUL character (%00)"
            await validation_response([{"field": "query", "detail": detail}])(scope, receive, send)
            return
        if scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.limits.get(path, DEFAULT_BODY_LIMIT)
        length: int | None = None
        content_type = b""
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = int(value) if value.isdigit() else -1
            elif name == b"content-type":
                content_type = value.split(b";", 1)[0].strip().lower()
            elif name == b"transfer-encoding":
                chunked = True
        problem = None
        if length is not None and length > limit:
            problem = too_large_response(limit)
        elif (
            path.startswith("/v1/")
            and (chunked or (length or 0) != 0)
            and content_type not in _JSON_TYPES
        ):
            problem = problem_response(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                "send the body as JSON, with the header Content-Type: application/json",
            )
        if problem is not None:
            await problem(scope, receive, send)
            return
        await self.app(scope, _capped(receive, limit), send)


def _capped(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def capped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return capped
