"""The risk query's hot path: the access cache kept in step by LISTEN/NOTIFY, and the
PostgreSQL read that must return exactly what the portable read returns."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.state_cache import APPLICATION_NAME, AccessCache
from ledger.audit.models import AuditEventRow
from ledger.clock import FrozenClock
from ledger.db import postgres_dsn
from ledger.runtime import Runtime
from ledger.scoring.policies import PolicySource
from ledger.scoring.service import PostgresReports, SessionReports
from tests.api.test_disputes_and_subjects import open_dispute
from tests.api.test_reports import DAY, Member, member, payload, pseudonym
from tests.factories import access_change, bearer, get_token, make_credential


def _requires_postgres(runtime: Runtime) -> str:
    dsn = postgres_dsn(runtime.settings.resolved_database_url)
    if dsn is None:
        pytest.skip("SQLite has no notifications: there every request reads")
    return dsn


async def terminate(dsn: str, application_name: str) -> int:
    """Cut the connections ``application_name`` holds, as a failover or a network cut
    would; how many there were."""
    admin = await asyncpg.connect(dsn)
    try:
        killed: int = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1 AND datname = current_database()",
            application_name,
        )
    finally:
        await admin.close()
    return killed


def _count_reads(runtime: Runtime, table: str = "clients") -> list[str]:
    seen: list[str] = []

    @sa.event.listens_for(runtime.engine.sync_engine, "before_cursor_execute")
    def _seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if f"FROM {table}" in statement:
            seen.append(statement)

    return seen


async def test_an_active_client_is_read_once_then_served_from_the_cache(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    credential = await make_credential(session, runtime)
    token = await get_token(client, credential)
    reads = _count_reads(runtime)
    for _ in range(3):
        assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
    # PostgreSQL (notifications): one read, then the cache. SQLite: a read every time.
    assert len(reads) == (1 if runtime.access_listener is not None else 3)


async def test_requests_that_miss_the_cache_together_share_one_read(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    credential = await make_credential(session, runtime)
    token = await get_token(client, credential)
    reads = _count_reads(runtime)
    answers = await asyncio.gather(
        *(client.get("/v1/me", headers=bearer(token)) for _ in range(20))
    )
    assert [a.status_code for a in answers] == [200] * 20
    assert len(reads) == 1


async def test_an_expired_policy_is_read_once_by_the_requests_that_find_it_so(
    runtime: Runtime,
) -> None:
    source = PolicySource(ttl=0)  # expired at every call
    reads = _count_reads(runtime, "scoring_policies")
    found = await asyncio.gather(*(source.get(runtime.read_sessionmaker) for _ in range(20)))
    assert len({p.version for p in found}) == 1
    assert len(reads) == 1
    await source.get(runtime.read_sessionmaker)  # a later call reads again
    assert len(reads) == 2


async def test_a_revocation_made_elsewhere_reaches_every_server(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    dsn = _requires_postgres(runtime)
    credential = await make_credential(session, runtime)
    token = await get_token(client, credential)
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
    key = (credential.client_id, credential.member.id)
    assert runtime.access_cache.is_active(key)
    # Another process (the CLI, another node) revokes with plain SQL.
    async with access_change(runtime):
        other = await asyncpg.connect(dsn)
        try:
            await other.execute(
                "UPDATE clients SET revoked_at = now() WHERE client_id = $1", credential.client_id
            )
        finally:
            await other.close()
    assert not runtime.access_cache.is_active(key)
    refused = await client.get("/v1/me", headers=bearer(token))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]


async def test_a_lost_listener_turns_the_cache_off_until_it_listens_again(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    dsn = _requires_postgres(runtime)
    assert runtime.access_listener is not None
    credential = await make_credential(session, runtime)
    token = await get_token(client, credential)
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
    generation = runtime.access_cache.generation
    assert await terminate(dsn, APPLICATION_NAME) == 1
    await asyncio.wait_for(runtime.access_cache.changed_since(generation), timeout=10)
    # Whatever was cached is gone; changes made while nobody listened cannot be missed.
    assert not runtime.access_cache.is_active((credential.client_id, credential.member.id))
    await asyncio.wait_for(runtime.access_listener.listening(), timeout=10)
    assert runtime.access_cache.enabled
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200


def test_a_read_that_raced_a_change_is_not_kept() -> None:
    cache = AccessCache()
    cache.enable()
    key = ("cl_x", uuid.uuid4())
    before = cache.generation  # a request starts its read...
    cache.invalidate()  # ...a revocation's notification arrives...
    cache.remember(key, before)  # ...and the (possibly stale) read finishes.
    assert not cache.is_active(key)
    cache.remember(key, cache.generation)
    assert cache.is_active(key)
    cache.disable()
    assert not cache.is_active(key)


async def test_the_postgres_read_returns_what_the_portable_read_returns(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, clock: FrozenClock
) -> None:
    dsn = _requires_postgres(runtime)
    acme = await member(client, session, runtime)
    shop: Member = await member(client, session, runtime)
    subject = pseudonym()
    filed = [
        await acme.file(payload(clock, subject=subject, category="forged_evidence")),
        await shop.file(payload(clock, subject=subject, category="empty_box")),
        await shop.file(
            payload(
                clock,
                subject=subject,
                occurred_at=(clock.now() - 400 * DAY).isoformat(),
                confirmed_at=(clock.now() - 390 * DAY).isoformat(),
            )
        ),
    ]
    await acme.post(f"/v1/reports/{filed[0]['id']}/withdrawal", {"reason": "other"})
    await open_dispute(shop, subject, filed[1]["id"], filed[2]["id"])
    await acme.file(payload(clock, subject=pseudonym()))  # someone else's report

    marked = await acme.post("/v1/subjects/markers", {"subject": subject, "reference": "ticket-9"})
    assert marked.status_code == 201, marked.text
    only_marked = pseudonym()  # no report at all, a marker in force
    assert (
        await acme.post("/v1/subjects/markers", {"subject": only_marked, "reference": "t-10"})
    ).status_code == 201

    hot = PostgresReports(dsn, size=1)
    try:
        fast = await hot.read(subject, clock.now())
        fast_marked = await hot.read(only_marked, clock.now())
        fast_clean = await hot.read(pseudonym(), clock.now())
    finally:
        await hot.close()
    async with runtime.read_sessionmaker() as read:
        portable = await SessionReports(read).read(subject, clock.now())
        portable_marked = await SessionReports(read).read(only_marked, clock.now())

    def key(row: object) -> str:
        return repr(row)

    assert len(fast.reports) == 3
    assert sorted(fast.reports, key=key) == sorted(portable.reports, key=key)
    assert sum(len(r.open_dispute_deadlines) for r in fast.reports) == 2
    assert fast.marker is not None
    assert fast.marker == portable.marker
    assert fast.marker.kind == "identity_misused"
    assert fast_marked == portable_marked
    assert fast_marked.reports == ()
    assert fast_marked.marker is not None
    assert (fast_clean.reports, fast_clean.marker) == ((), None)


async def test_reads_are_served_in_the_order_they_were_asked(runtime: Runtime) -> None:
    """One connection, and new reads arriving all the time (as on a loaded server): no
    read overtakes one that was already waiting."""
    dsn = _requires_postgres(runtime)
    hot = PostgresReports(dsn, size=1)
    now = dt.datetime.now(dt.UTC)
    asked: list[int] = []
    answered: list[int] = []

    async def read(n: int) -> None:
        asked.append(n)
        await hot.read(pseudonym(), now)
        answered.append(n)

    try:
        await hot.read(pseudonym(), now)  # the pool exists before the race starts
        reads = []
        for n in range(200):
            reads.append(asyncio.create_task(read(n)))
            await asyncio.sleep(0)  # the next one arrives while earlier ones wait
        await asyncio.gather(*reads)
    finally:
        await hot.close()
    assert answered == asked


async def test_an_oversized_query_is_refused_before_it_is_read(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    token = await get_token(client, await make_credential(session, runtime))
    body = b'{"subject": "' + b"a" * 70_000 + b'"}'
    response = await client.post("/v1/risk/query", content=body, headers=bearer(token))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert "larger than this route accepts (65,536 bytes)" in response.json()["detail"]


async def test_an_unreachable_database_is_a_503_and_nothing_is_audited(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    token = await get_token(client, await make_credential(session, runtime))
    before = await _audit_count(runtime)
    subject = pseudonym()
    if runtime.risk.live is not None:  # a subject that may count: it must be read
        runtime.risk.live.touch([subject])
    # Nothing listens on port 1: the connection is refused, as when the database is down.
    original, runtime.risk.hot = (
        runtime.risk.hot,
        PostgresReports("postgresql://ledger@127.0.0.1:1/ledger", size=1),
    )
    try:
        response = await client.post(
            "/v1/risk/query",
            json={"subject": subject, "purpose": "refund_review", "reference": "r-1"},
            headers=bearer(token),
        )
    finally:
        await runtime.risk.hot.close()
        runtime.risk.hot = original
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "retry" in response.json()["detail"]
    assert await _audit_count(runtime) == before


async def _audit_count(runtime: Runtime) -> int:
    async with runtime.read_sessionmaker() as read:
        return (
            await read.execute(sa.select(sa.func.count()).select_from(AuditEventRow))
        ).scalar_one()
