"""Liveness, readiness and metrics, for the platform that runs the ledger."""

from __future__ import annotations

import hmac
import logging
import os
from ipaddress import IPv4Network, IPv6Network, ip_address

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy.exc import SQLAlchemyError

from api.deps import RuntimeDep
from api.schemas.health import Health, Readiness
from ledger import db
from ledger import metrics as ledger_metrics
from ledger.errors import PermissionDenied

router = APIRouter(tags=["operations"])
log = logging.getLogger("ledger.api")


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is alive. Touches nothing else."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(runtime: RuntimeDep, request: Request) -> JSONResponse:
    """The database answers, its schema is at the revision this code expects, and this
    process has loaded its index of photo fingerprints."""
    expected: str = request.app.state.head_revision
    index = "loaded" if runtime.evidence.indexes.loaded else "loading"
    try:
        async with runtime.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        current = await db.current_revision(runtime.engine)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("readiness check: database unreachable", extra={"error": type(exc).__name__})
        body = Readiness(
            status="unavailable",
            database="unreachable",
            schema_revision=None,
            expected_revision=expected,
            evidence_index=index,
        )
        return JSONResponse(body.model_dump(), status_code=503)
    ready = current == expected and runtime.evidence.indexes.loaded
    body = Readiness(
        status="ok" if ready else "unavailable",
        database="ok",
        schema_revision=current,
        expected_revision=expected,
        evidence_index=index,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response, responses={403: {"description": "not allowed"}})
async def metrics(runtime: RuntimeDep, request: Request) -> Response:
    """Prometheus metrics (text exposition format): HTTP, this process's figures, and the
    ledger's (docs/operations.md). Served to ``LEDGER_METRICS_ALLOW`` networks (loopback
    by default), or to a scraper that sends ``LEDGER_METRICS_TOKEN`` as a bearer token."""
    settings = runtime.settings
    if not _may_scrape(request, settings.metrics_allow_networks, settings.metrics_token):
        raise PermissionDenied(
            "metrics are served only to the networks in LEDGER_METRICS_ALLOW, or with "
            "the bearer token LEDGER_METRICS_TOKEN; this request has neither"
        )
    try:
        async with runtime.read_sessionmaker() as read:
            state = await ledger_metrics.ledger_state(read, runtime.clock.now())
    except SQLAlchemyError as exc:
        log.warning("metrics: database unreachable", extra={"error": type(exc).__name__})
        state = []  # the process's own figures still say something
    parts = [generate_latest(ledger_metrics.registry_of(ledger_metrics.Families(state)))]
    if os.environ.get(ledger_metrics.MULTIPROCESS_ENV):
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]  # every worker's figures, added up
        parts.append(generate_latest(combined))
    else:
        parts.append(generate_latest(request.app.state.metrics.registry))
        parts.append(generate_latest(runtime.metrics.registry))
    return Response(b"".join(parts), media_type=CONTENT_TYPE_LATEST)


def _may_scrape(request: Request, allowed: list[IPv4Network | IPv6Network], token: str) -> bool:
    if token:
        sent = request.headers.get("authorization", "")
        if hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return True
    host = request.client.host if request.client is not None else ""
    try:
        address = ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in allowed)
