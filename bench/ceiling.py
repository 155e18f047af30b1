"""Two ceilings for the risk query, served by uvicorn with as many processes as the ledger.

- ``bare``: a bare Starlette endpoint doing the read (asyncpg, one indexed read of the
  subject's reports): no auth, no audit, no scoring. What any service answering from
  PostgreSQL pays at least.
- ``audited``: the least the ledger's promises cost, done as plainly as possible: a
  bearer token verified (HS256, a verified token kept in a dict, as the ledger's
  verifier keeps one), the same indexed read, and one audit row per answer committed
  durably before the answer is sent, group-committed (rows queued, one multi-row
  ``INSERT ... SELECT unnest`` and commit per batch, as the ledger's audit writer does).

Started by bench/risk_query.py:

    uvicorn --factory bench.ceiling:bare --workers 2     (LEDGER_BENCH_DSN: the database)
    uvicorn --factory bench.ceiling:audited --workers 2  (LEDGER_BENCH_SECRET: the token key)
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

QUERY = (
    "SELECT member_id, category, state, confirmed_at FROM reports "
    "WHERE subject = $1 AND state <> 'purged' AND expires_at > now()"
)
AUDIT_TABLE = """
CREATE TABLE IF NOT EXISTS ceiling_audit (
    id bigserial PRIMARY KEY, at timestamptz NOT NULL, subject text NOT NULL, body text NOT NULL
)
"""
AUDIT_INSERT = (
    "INSERT INTO ceiling_audit (at, subject, body) "
    "SELECT now(), s, b FROM unnest($1::text[], $2::text[]) AS t(s, b)"
)
BATCH = 1000


def bare() -> Starlette:
    pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(os.environ["LEDGER_BENCH_DSN"], min_size=8, max_size=8)
        yield
        await pool.close()

    async def ceiling(request: Request) -> Response:
        body = json.loads(await request.body())
        assert pool is not None
        rows = await pool.fetch(QUERY, body["subject"])
        return Response(json.dumps({"reports": len(rows)}), media_type="application/json")

    return Starlette(routes=[Route("/v1/risk/query", ceiling, methods=["POST"])], lifespan=lifespan)


app = bare  # the name earlier runs used


class _AuditWriter:
    """Rows queued by requests, written and committed in batches by one task."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._queue: list[tuple[str, str, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def record(self, subject: str, body: str) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((subject, body, done))
        self._wake.set()
        await done

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[:BATCH], self._queue[BATCH:]
                try:
                    async with self._pool.acquire() as conn:
                        await conn.execute(
                            AUDIT_INSERT, [b[0] for b in batch], [b[1] for b in batch]
                        )
                except Exception as exc:  # noqa: BLE001  (the requests fail, the writer goes on)
                    for _, _, done in batch:
                        done.set_exception(exc)
                    continue
                for _, _, done in batch:
                    done.set_result(None)

    async def close(self) -> None:
        self._task.cancel()


def audited() -> Starlette:
    secret = os.environ["LEDGER_BENCH_SECRET"]
    pool: asyncpg.Pool | None = None
    audit_pool: asyncpg.Pool | None = None  # the writer's own connection, as in the ledger
    writer: _AuditWriter | None = None
    verified: dict[str, float] = {}  # token -> its expiry

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        nonlocal pool, audit_pool, writer
        dsn = os.environ["LEDGER_BENCH_DSN"]
        pool = await asyncpg.create_pool(dsn, min_size=8, max_size=8)
        audit_pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        async with audit_pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock(19)")  # workers create it one by one
            await conn.execute(AUDIT_TABLE)
            await conn.execute("SELECT pg_advisory_unlock(19)")
        writer = _AuditWriter(audit_pool)
        yield
        await writer.close()
        await audit_pool.close()
        await pool.close()

    def member_of(request: Request) -> str | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        expiry = verified.get(token)
        if expiry is None:
            try:
                claims = jwt.decode(token, secret, algorithms=["HS256"], audience="ceiling")
            except jwt.InvalidTokenError:
                return None
            expiry = verified[token] = float(claims["exp"])
        if expiry < time.time():
            return None
        return token

    async def ceiling(request: Request) -> Response:
        if member_of(request) is None:
            return Response(status_code=401)
        body = json.loads(await request.body())
        assert pool is not None
        assert writer is not None
        rows = await pool.fetch(QUERY, body["subject"])
        answer = json.dumps({"reports": len(rows)})
        await writer.record(body["subject"], answer)
        return Response(answer, media_type="application/json")

    return Starlette(routes=[Route("/v1/risk/query", ceiling, methods=["POST"])], lifespan=lifespan)


def token(secret: str, *, seconds: int = 3600) -> str:
    """A token the audited ceiling accepts."""
    now = int(time.time())
    return jwt.encode(
        {"sub": "bench", "aud": "ceiling", "iat": now, "exp": now + seconds}, secret, "HS256"
    )
