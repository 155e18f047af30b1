"""Batches under concurrency: per-item answers, no deadlock, atomic idempotency keys,
and a request that lost to a concurrent transaction is retried, never a 500."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.types import Receive, Scope, Send

from api.errors import is_transient, problem_response
from api.retry import RetryContention, mark_retryable
from ledger.audit.models import AuditEventRow
from ledger.clock import FrozenClock
from ledger.reports.models import IdempotencyKey, Report
from ledger.runtime import Runtime
from tests.api.test_reports import Member, payload


async def _counts(runtime: Runtime) -> tuple[int, int]:
    async with runtime.read_sessionmaker() as read:
        reports = await read.scalar(sa.select(sa.func.count()).select_from(Report))
        events = await read.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEventRow)
            .where(AuditEventRow.tag == "report:refund:submitted")
        )
    return int(reports or 0), int(events or 0)


async def test_a_batch_item_whose_case_ref_names_a_different_report_is_refused_alone(
    acme: Member, clock: FrozenClock, runtime: Runtime
) -> None:
    filed = await acme.file(payload(clock))
    clash = payload(clock, case_ref=filed["case_ref"], amount_minor=1)
    first, last = payload(clock), payload(clock)
    response = await acme.post("/v1/reports:batch", {"reports": [first, clash, last]})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [i["status"] for i in answer["items"]] == ["accepted", "rejected", "accepted"]
    refused = answer["items"][1]
    assert refused["type"] == "/problems/conflict"
    assert refused["report_id"] == filed["id"]
    assert refused["errors"][0]["field"] == "case_ref"
    assert (answer["accepted"], answer["duplicate"], answer["rejected"]) == (2, 0, 1)
    assert await _counts(runtime) == (3, 3)


def _postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: its batches cannot interleave")


CLIENTS = 32


async def test_concurrent_batches_sharing_case_refs_in_any_order_never_fail(
    acme: Member, clock: FrozenClock, runtime: Runtime, backend: str
) -> None:
    _postgres_only(backend)
    reports = [payload(clock) for _ in range(24)]
    rng = random.Random(13)

    def shuffled() -> list[dict[str, Any]]:
        # Each client sends an overlapping part of the same cases, in its own order.
        part = rng.sample(reports, 16)
        rng.shuffle(part)
        return part

    bodies = [{"reports": shuffled()} for _ in range(CLIENTS)]
    responses = await asyncio.gather(*(acme.post("/v1/reports:batch", b) for b in bodies))
    assert [r.status_code for r in responses] == [200] * CLIENTS, [
        r.text for r in responses if r.status_code != 200
    ]
    for response, body in zip(responses, bodies, strict=True):
        assert {i["status"] for i in response.json()["items"]} <= {"accepted", "duplicate"}
        assert len(response.json()["items"]) == len(body["reports"])
    accepted = sum(r.json()["accepted"] for r in responses)
    assert accepted == len({r["case_ref"] for b in bodies for r in b["reports"]})
    assert await _counts(runtime) == (accepted, accepted)


async def test_one_idempotency_key_sent_by_many_at_once_files_once_and_replays(
    acme: Member, clock: FrozenClock, runtime: Runtime, backend: str
) -> None:
    _postgres_only(backend)
    body = {"reports": [payload(clock) for _ in range(5)]}
    other = {"reports": [payload(clock)]}
    key = {"Idempotency-Key": "batch-concurrent-1"}
    sends = [body] * CLIENTS + [other] * 4
    random.Random(7).shuffle(sends)
    responses = await asyncio.gather(
        *(acme.post("/v1/reports:batch", b, headers=key) for b in sends)
    )
    assert all(r.status_code < 500 for r in responses), [r.text for r in responses]
    by_body = [(b is body, r) for b, r in zip(sends, responses, strict=True)]
    same = [r for is_body, r in by_body if is_body]
    different = [r for is_body, r in by_body if not is_body]
    # Whichever request claimed the key first decides what it means.
    winner_is_body = any(r.status_code == 200 for r in same)
    if winner_is_body:
        assert [r.status_code for r in same] == [200] * CLIENTS
        assert len({json.dumps(r.json(), sort_keys=True) for r in same}) == 1
        assert sum(r.headers.get("idempotent-replayed") == "true" for r in same) == CLIENTS - 1
        assert [r.status_code for r in different] == [409] * 4
        assert await _counts(runtime) == (5, 5)
    else:
        assert [r.status_code for r in same] == [409] * CLIENTS
        assert await _counts(runtime) == (1, 1)
    async with runtime.read_sessionmaker() as read:
        stored = await read.scalar(sa.select(sa.func.count()).select_from(IdempotencyKey))
    assert stored == 1


async def test_a_retried_idempotent_batch_after_the_first_commit_is_replayed(
    acme: Member, clock: FrozenClock, runtime: Runtime
) -> None:
    body = {"reports": [payload(clock)]}
    key = {"Idempotency-Key": "retry-after-commit"}
    first = await acme.post("/v1/reports:batch", body, headers=key)
    again = await acme.post("/v1/reports:batch", body, headers=key)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert await _counts(runtime) == (1, 1)


class _LosesTheRace:
    """An ASGI app whose first ``losses`` attempts lose to a concurrent transaction; it
    reads the whole body each time and answers what it read."""

    def __init__(self, losses: int) -> None:
        self.losses = losses
        self.attempts: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.attempts.append(body)
        if len(self.attempts) <= self.losses:
            mark_retryable(scope)
            response = problem_response(503, "unavailable", "Service unavailable", "lost")
        else:
            response = problem_response(200, "ok", "OK", body.decode())
        await response(scope, receive, send)


@pytest.mark.parametrize(("losses", "status"), [(0, 200), (3, 200), (4, 503)])
async def test_a_request_that_lost_a_race_is_retried_whole_up_to_four_times(
    losses: int, status: int
) -> None:
    inner = _LosesTheRace(losses)
    transport = httpx.ASGITransport(app=RetryContention(inner))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.post("/v1/x", content=b"the same body")
    assert response.status_code == status
    assert inner.attempts == [b"the same body"] * min(losses + 1, 4)
    if status == 200:
        assert response.json()["detail"] == "the same body"


async def test_a_deadlock_is_recognised_as_a_lost_race(runtime: Runtime, backend: str) -> None:
    _postgres_only(backend)
    # Two transactions that lock two rows in opposite orders: PostgreSQL breaks the
    # deadlock by failing one, which the error handling must take for a lost race.
    async with runtime.sessionmaker() as setup, setup.begin():
        await setup.execute(sa.text("CREATE TABLE race (id int PRIMARY KEY, n int)"))
        await setup.execute(sa.text("INSERT INTO race VALUES (1, 0), (2, 0)"))
    barrier = asyncio.Barrier(2)

    async def lock(first: int, second: int) -> None:
        async with runtime.sessionmaker() as session, session.begin():
            await session.execute(sa.text(f"UPDATE race SET n = n + 1 WHERE id = {first}"))
            await barrier.wait()
            await session.execute(sa.text(f"UPDATE race SET n = n + 1 WHERE id = {second}"))

    outcomes = await asyncio.gather(lock(1, 2), lock(2, 1), return_exceptions=True)
    lost = [o for o in outcomes if isinstance(o, Exception)]
    assert len(lost) == 1
    assert is_transient(lost[0])
