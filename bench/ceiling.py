"""The ceiling for the risk query: a bare Starlette endpoint doing the same read with
asyncpg (no auth, no audit, no scoring). Started by bench/risk_query.py.

    uvicorn --factory bench.ceiling:app  (LEDGER_BENCH_DSN selects the database)
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

QUERY = (
    "SELECT member_id, category, state, confirmed_at FROM reports "
    "WHERE subject = $1 AND state <> 'purged' AND expires_at > now()"
)


def app() -> Starlette:
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
