"""The application factory: ``create_app(settings)``."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import console, errors, openapi
from api.direct import DirectDispatch
from api.middleware import Metrics, RequestContextMiddleware, RequestLimits, route_body_limits
from api.retry import RetryContention
from api.routers import (
    audit,
    auth,
    disputes,
    evidence,
    health,
    me,
    oauth,
    pseudonyms,
    reports,
    risk,
    subjects,
    webhooks,
)
from ledger import db
from ledger.clock import Clock
from ledger.config import Settings
from ledger.runtime import Runtime

# Routes anyone may call. Every other route must declare a permission (tests enforce it).
PUBLIC_ROUTES = frozenset(
    {
        "/oauth/token",
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
        "/.well-known/refund-ledger/pseudonym-key",
        "/console/sign-in",
        "/console/language",  # the language switch: a cookie, no data
        "/console/static",  # the stylesheet
        "/v1/auth/token",
        "/v1/audit/keys",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/docs/assets",  # Swagger UI's and ReDoc's own files
        "/redoc",
    }
)


GC_THRESHOLD = 50_000  # CPython's default is 700


def tune_gc() -> None:
    """Garbage-collector settings for a long-running server, applied once it has started.

    Measured on the risk-query benchmark with CPython's defaults: 20 full collections in
    10 s, each walking the whole heap (up to 100 ms; 1.7 s of CPU in all), each a pause
    for every request in flight, and the main source of the p99 tail. ``freeze`` moves
    what exists after start-up (modules, the app, pools, caches) out of the collector's
    sight; a larger first-generation threshold lets a request's objects die young instead
    of being promoted, mid-request, into the older generations. With both, the same run
    saw one collection of a few milliseconds (docs/benchmarks.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 100)


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    server: bool = False,
) -> FastAPI:
    """Build the ledger's HTTP application. Keys must exist (``ledger init``).

    ``server=True`` (``ledger serve``) tunes the process's garbage collector at start-up.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings, clock=clock)
        runtime.start()
        app.state.runtime = runtime
        app.state.head_revision = db.head_revision()
        if server:
            tune_gc()
        try:
            yield
        finally:
            await runtime.close()

    app = FastAPI(
        title="Refund-abuse ledger",
        version="0.1.0",
        summary="Confirmed refund abuse, shared across platforms, with pseudonymous subjects "
        "and a verifiable audit log.",
        lifespan=lifespan,
        # The ledger has its own metrics (/metrics) and JSON logs, and no OpenTelemetry;
        # with FastAPI's native telemetry off, it costs nothing per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url=None,  # served by api/openapi.py, from the ledger's own copies
        redoc_url=None,
    )
    metrics = Metrics()
    app.state.metrics = metrics
    errors.install(app)
    openapi.install(app)
    # Routes are matched in order: the risk query first, on its own (api/direct.py).
    app.router.routes.append(risk.query_route())
    app.include_router(risk.router)
    app.include_router(evidence.router)
    app.include_router(oauth.router)
    app.include_router(me.router)
    app.include_router(auth.router)
    app.include_router(audit.router)
    app.include_router(reports.router)
    app.include_router(disputes.router)
    app.include_router(subjects.router)
    app.include_router(pseudonyms.router)
    app.include_router(webhooks.router)
    console.install(app)
    app.include_router(health.router)
    # Middlewares added first sit innermost.
    app.add_middleware(RetryContention)
    app.add_middleware(DirectDispatch, routes=list(app.routes))
    app.add_middleware(RequestLimits, limits=route_body_limits(app.routes))
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app


def create_app_from_env() -> FastAPI:
    """Entry point for ``uvicorn --factory``: settings from ``LEDGER_*`` variables."""
    from ledger.logs import configure_logging  # noqa: PLC0415

    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings, server=True)
