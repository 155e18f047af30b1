"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import math

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from refund_ledger_client.voprf import VOPRF, Suite

from api.app import create_app
from ledger import db
from ledger.clock import FrozenClock
from ledger.config import Settings
from ledger.db import create_engine
from ledger.evidence.upkeep import Indexes
from ledger.pseudonyms.limits import EvaluationLimiter
from ledger.runtime import Runtime
from tests.api.test_disputes_and_subjects import open_dispute
from tests.api.test_reports import Member, payload, pseudonym
from tests.live import serving


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_the_schema_is_at_head(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await runtime.evidence.indexes.refresh()  # the load started with the app, or ends here
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["schema_revision"] == body["expected_revision"] == db.head_revision()
    assert body["evidence_index"] == "loaded"


async def test_readyz_is_503_until_the_fingerprint_index_is_loaded(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await runtime.evidence.indexes.close()
    runtime.evidence.indexes = Indexes(runtime.read_sessionmaker, None)  # not started
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["evidence_index"] == "loading"
    runtime.evidence.indexes.start()
    for _ in range(200):  # bounded: an empty database loads in milliseconds
        if runtime.evidence.indexes.loaded:
            break
        await asyncio.sleep(0.01)
    assert (await client.get("/readyz")).status_code == 200


async def test_readyz_is_503_when_the_schema_is_behind(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await db.downgrade(runtime.engine, "base")
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["schema_revision"] is None


async def test_readyz_is_503_when_the_database_is_unreachable(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    engine = runtime.engine
    # Nothing listens on port 1: the connection is refused at once.
    runtime.engine = create_engine("postgresql+asyncpg://ledger@127.0.0.1:1/ledger")
    try:
        response = await client.get("/readyz")
    finally:
        await runtime.engine.dispose()
        runtime.engine = engine
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await client.get("/healthz")
    await client.get("/v1/me")
    await client.get("/v1/does-not-exist")
    text = (await client.get("/metrics")).text
    samples = {
        (s.labels.get("route"), s.labels.get("status")): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "ledger_http_requests"
        for s in family.samples
        if s.name == "ledger_http_requests_total"
    }
    assert samples[("/healthz", "200")] == 3
    assert samples[("/v1/me", "401")] == 1
    assert samples[("<unmatched>", "404")] == 1
    assert "ledger_http_request_duration_seconds_bucket" in text


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_the_metrics_operators_alert_on(
    client: httpx.AsyncClient, acme: Member, shop: Member, clock: FrozenClock, runtime: Runtime
) -> None:
    subject = pseudonym()
    report = await acme.file(payload(clock, subject=subject))
    hook = {"url": "https://risk.example.com/hook", "event_types": ["dispute.opened"]}
    assert (await acme.post("/v1/webhooks/endpoints", hook)).status_code == 201
    dispute = await open_dispute(shop, subject, report["id"])  # a delivery, never sent here
    query = {"subject": subject, "purpose": "refund_review", "reference": "refund-1"}
    assert (await shop.post("/v1/risk/query", query)).status_code == 200  # the writer's
    assert runtime.sampler is not None
    runtime.sampler.sample()
    before = _samples((await client.get("/metrics")).text)
    assert before[("ledger_disputes_pending", ())] == 1
    assert before[("ledger_disputes_overdue", ())] == 0
    # The sequencer is off in tests: every event so far waits for the tree.
    assert before[("ledger_audit_events_unsequenced", ())] >= 3
    assert math.isnan(before[("ledger_audit_checkpoint_age_seconds", ())])  # none signed yet
    assert before[("ledger_audit_writer_batch_size_count", ())] >= 1
    assert before[("ledger_audit_writer_queue_length", ())] == 0
    assert before[("ledger_db_pool_size", (("pool", "main"),))] == runtime.settings.db_pool_size
    assert ("ledger_db_pool_waiting", (("pool", "main"),)) in before

    await runtime.audit.checkpoint()
    clock.set(dt.datetime.fromisoformat(dispute["deadline"]) + dt.timedelta(hours=1))
    after = _samples((await client.get("/metrics")).text)
    assert after[("ledger_disputes_overdue", ())] == 1  # maintenance has not run yet
    assert after[("ledger_audit_events_unsequenced", ())] == 0
    assert after[("ledger_audit_checkpoint_age_seconds", ())] >= 3600
    assert after[("ledger_webhook_oldest_due_seconds", ())] >= 20 * 86400
    assert after[("ledger_webhook_endpoints_turned_off", ())] == 0
    # Turned off, an endpoint holds its deliveries on purpose: the workers are not behind.
    await acme.relogin()
    (endpoint,) = (await acme.get("/v1/webhooks/endpoints")).json()["endpoints"]
    off = await acme.post(f"/v1/webhooks/endpoints/{endpoint['id']}/state", {"state": "disabled"})
    assert off.status_code == 200, off.text
    held = _samples((await client.get("/metrics")).text)
    assert held[("ledger_webhook_oldest_due_seconds", ())] == 0


async def test_refusals_and_lockouts_are_counted_by_kind(
    client: httpx.AsyncClient, acme: Member, runtime: Runtime
) -> None:
    client_id = acme.credential.client_id
    for _ in range(11):  # the 11th is refused before any secret is checked
        await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, "wrong"),
        )
    runtime.evaluation_limiter = EvaluationLimiter("1/minute", {}, limiter=runtime.limiter)
    _blind, blinded = Suite(VOPRF).blind(b"phone:+8613800138000")
    element = base64.urlsafe_b64encode(blinded).rstrip(b"=").decode()
    for _ in range(2):
        await acme.post("/v1/pseudonyms:evaluate", {"blinded_elements": [element]})
    samples = _samples((await client.get("/metrics")).text)
    key = ("ledger_lockout_refusals_total", (("kind", "token"), ("scope", "account")))
    assert samples[key] == 1
    limited = ("ledger_rate_limit_refusals_total", (("limit", "pseudonym_evaluations"),))
    assert samples[limited] == 1


async def test_metrics_are_served_to_allowed_networks_or_with_the_token(
    settings: Settings, clock: FrozenClock
) -> None:
    settings = settings.model_copy(update={"metrics_token": "scrape-me"})
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        outside = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))
        async with httpx.AsyncClient(transport=outside, base_url="http://testserver") as far:
            refused = await far.get("/metrics")
            assert refused.status_code == 403
            assert "LEDGER_METRICS_ALLOW" in refused.json()["detail"]
            assert "203.0.113.9" not in refused.text
            wrong = await far.get("/metrics", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 403
            right = await far.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
            assert right.status_code == 200
        inside = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=inside, base_url="http://testserver") as near:
            assert (await near.get("/metrics")).status_code == 200


@pytest.mark.parametrize(("trusted", "second_address_locked"), [("127.0.0.1", False), ("", True)])
async def test_behind_a_trusted_proxy_the_lockout_sees_the_clients_address(
    settings: Settings, trusted: str, second_address_locked: bool
) -> None:
    """Served as `ledger serve` serves it, on a real socket: X-Forwarded-For from a
    trusted proxy names the client; from anyone else it is ignored, so all requests
    come from the proxy's address and one client's failures lock them all out."""
    settings = settings.model_copy(
        update={"trusted_proxies": trusted, "sign_in_failures_per_address": "2/15minutes"}
    )

    def attempts(url: str) -> list[int]:
        statuses = []
        with httpx.Client(base_url=url) as http:
            for n, address in enumerate(["198.51.100.7"] * 3 + ["198.51.100.8"]):
                response = http.post(
                    "/v1/auth/token",
                    json={"username": f"nobody-{n}", "password": "wrong"},
                    headers={"X-Forwarded-For": address},
                )
                statuses.append(response.status_code)
        return statuses

    with serving(settings, as_served=True) as (url, _app):
        statuses = await asyncio.to_thread(attempts, url)
    assert statuses[:3] == [401, 401, 429]  # the first address, locked after 2 failures
    assert statuses[3] == (429 if second_address_locked else 401)
