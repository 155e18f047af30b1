"""Liveness, readiness and metrics, for the platform that runs the ledger."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from api.deps import RuntimeDep
from api.schemas.health import Health, Readiness
from ledger import db

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


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (text exposition format)."""
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
