"""Lists cost what they return: every filter runs in the database, and a page of a
member with many reports costs as many statements as a page of a member with few."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy import event

from ledger.clock import FrozenClock
from ledger.db import table_of
from ledger.disputes.models import Dispute, DisputeItem, Resolution
from ledger.reports.models import Report
from ledger.reports.policy import Basis, Category, ReportPolicy, State, Status, status
from ledger.reports.queries import status_is
from ledger.runtime import Runtime
from ledger.types import uuid7
from tests.api.test_reports import Member, other, pseudonym

__all__ = ["other"]
DAY = dt.timedelta(days=1)


def _row(member: Member, now: dt.datetime, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": uuid7(),
        "member_id": member.credential.member.id,
        "case_ref": f"seed-{os.urandom(6).hex()}",
        "subject": pseudonym(),
        "category": Category.EMPTY_BOX,
        "basis": Basis.PLATFORM_REVIEW,
        "amount_minor": 100,
        "currency": "CNY",
        "evidence": json.dumps(["0" * 64]),
        "fingerprint": "0" * 64,
        "occurred_at": now - 40 * DAY,
        "confirmed_at": now - 39 * DAY,
        "notified_at": now - 38 * DAY,
        "filed_at": now - 38 * DAY,
        "expires_at": now + 1000 * DAY,
        "state": State.ACTIVE,
        "state_changed_at": now - 38 * DAY,
    }
    row.update(overrides)
    return row


async def _seed(runtime: Runtime, rows: list[dict[str, Any]]) -> None:
    async with runtime.sessionmaker() as session, session.begin():
        for start in range(0, len(rows), 500):
            await session.execute(sa.insert(table_of(Report)), rows[start : start + 500])


async def _dispute(
    runtime: Runtime,
    report: dict[str, Any],
    *,
    by: Member,
    opened_at: dt.datetime,
    deadline: dt.datetime,
) -> None:
    """An open dispute on a seeded report, opened by ``by``."""
    async with runtime.sessionmaker() as session, session.begin():
        dispute = Dispute(
            id=uuid7(),
            subject=report["subject"],
            opened_by=by.credential.member.id,
            reference=f"ref-{os.urandom(4).hex()}",
            opened_at=opened_at,
            deadline=deadline,
        )
        session.add(dispute)
        await session.flush()
        session.add(
            DisputeItem(
                dispute_id=dispute.id,
                report_id=report["id"],
                reporting_member_id=report["member_id"],
                resolution=Resolution.OPEN,
            )
        )


@contextmanager
def _statements(runtime: Runtime) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(runtime.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", count)


async def _page_cost(acme: Member, runtime: Runtime, **params: Any) -> tuple[int, dict[str, Any]]:
    with _statements(runtime) as seen:
        response = await acme.get("/v1/reports", **params)
    assert response.status_code == 200, response.text
    return len(seen), response.json()


async def test_a_filtered_page_costs_the_same_however_many_reports_the_member_has(
    acme: Member, clock: FrozenClock, runtime: Runtime
) -> None:
    now = clock.now()
    await _seed(runtime, [_row(acme, now) for _ in range(300)])
    await _seed(runtime, [_row(acme, now, state=State.WITHDRAWN)])
    await _page_cost(acme, runtime, limit=1)  # warm: the client's state is cached now
    small, page = await _page_cost(acme, runtime, status="withdrawn", limit=1)
    assert len(page["reports"]) == 1
    assert page["next_cursor"] is None
    await _seed(runtime, [_row(acme, now) for _ in range(3000)])
    large, page = await _page_cost(acme, runtime, status="withdrawn", limit=1)
    assert len(page["reports"]) == 1
    # Reading page after page and filtering in Python would cost ~3,000 statements here.
    assert large == small
    assert large <= 4


async def test_every_list_pages_with_an_opaque_cursor(
    acme: Member, clock: FrozenClock, runtime: Runtime, client: httpx.AsyncClient
) -> None:
    now = clock.now()
    await _seed(runtime, [_row(acme, now) for _ in range(5)])
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await acme.get("/v1/reports", **params)).json()
        seen += [r["id"] for r in page["reports"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5
    for path, params in [
        ("/v1/reports", {}),
        ("/v1/disputes", {"assigned": "me"}),
        ("/v1/disputes", {"opened": "me"}),
    ]:
        bad = await acme.get(path, cursor="not-a-cursor", **params)
        assert bad.status_code == 422, bad.text
        assert bad.json()["errors"][0]["field"] == "query.cursor"
    # A cursor from one list is refused by another.
    first = (await acme.get("/v1/reports", limit=1)).json()["next_cursor"]
    wrong = await acme.get("/v1/disputes", assigned="me", cursor=first)
    assert wrong.status_code == 422


async def test_disputes_page_by_cursor(
    acme: Member, other: Member, clock: FrozenClock, runtime: Runtime
) -> None:
    now = clock.now()
    reports = [_row(acme, now) for _ in range(5)]
    await _seed(runtime, reports)
    for n, report in enumerate(reports):
        opened_at = now - dt.timedelta(hours=n)
        await _dispute(
            runtime, report, by=other, opened_at=opened_at, deadline=now + (10 - n) * DAY
        )
    for member, params, key in [
        (acme, {"assigned": "me"}, "items"),
        (other, {"opened": "me"}, "disputes"),
    ]:
        got: list[Any] = []
        cursor = None
        while True:
            page = (
                await member.get(
                    "/v1/disputes", limit=2, **params, **({"cursor": cursor} if cursor else {})
                )
            ).json()
            got += page[key]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(got) == 5
        if key == "items":
            deadlines = [i["deadline"] for i in got]
            assert deadlines == sorted(deadlines)


async def test_the_status_conditions_agree_with_the_status_rule(
    acme: Member, other: Member, clock: FrozenClock, runtime: Runtime
) -> None:
    now = clock.now()
    policy = ReportPolicy()
    notices = [None, now - 5 * DAY]
    filings = [now - 5 * DAY, now - 40 * DAY]
    states = [State.ACTIVE, State.WITHDRAWN, State.SUPPRESSED]
    disputes = [None, now + DAY, now - DAY]  # none, open, overdue
    cases = []
    for state, notified, filed, deadline in itertools.product(states, notices, filings, disputes):
        row = _row(acme, now, state=state, notified_at=notified, filed_at=filed)
        cases.append((row, deadline))
    await _seed(runtime, [row for row, _ in cases])
    for row, deadline in cases:
        if deadline is not None:
            await _dispute(runtime, row, by=other, opened_at=now - 2 * DAY, deadline=deadline)
    expected = {
        row["id"]: status(
            state=row["state"],
            filed_at=row["filed_at"],
            notified_at=row["notified_at"],
            expires_at=row["expires_at"],
            dispute_deadlines=[] if deadline is None else [deadline],
            now=now,
            policy=policy,
        )
        for row, deadline in cases
    }
    assert set(expected.values()) == set(Status) - {Status.EXPIRED}  # every status is met
    async with runtime.read_sessionmaker() as read:
        for wanted in Status:
            found = set(
                await read.scalars(
                    sa.select(Report.id).where(status_is(wanted, now=now, policy=policy))
                )
            )
            assert found == {i for i, s in expected.items() if s is wanted}, wanted
