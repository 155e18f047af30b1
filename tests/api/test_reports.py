"""Filing, reading, notice, withdrawal and retention of reports, through HTTP."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import logging
import os
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from ledger import maintenance
from ledger.audit.models import AuditEventRow
from ledger.clock import FrozenClock
from ledger.db import create_sessionmaker
from ledger.reports.models import Report, ReportAction
from ledger.runtime import Runtime
from tests.factories import Credential, bearer, get_token, make_credential

DAY = dt.timedelta(days=1)


def pseudonym() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()


def digest(text: str = "photo.jpg") -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def payload(clock: FrozenClock, **overrides: Any) -> dict[str, Any]:
    now = clock.now()
    body: dict[str, Any] = {
        "case_ref": f"case-{os.urandom(4).hex()}",
        "subject": pseudonym(),
        "category": "forged_evidence",
        "basis": "platform_review",
        "amount_minor": 12900,
        "currency": "CNY",
        "occurred_at": (now - 10 * DAY).isoformat(),
        "confirmed_at": (now - 2 * DAY).isoformat(),
        "evidence_sha256": [digest()],
        "subject_notified_at": (now - DAY).isoformat(),
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


class Member:
    def __init__(self, http: httpx.AsyncClient, credential: Credential, token: str) -> None:
        self.http, self.credential, self.headers = http, credential, bearer(token)

    async def post(self, path: str, body: Any, **kw: Any) -> httpx.Response:
        return await self.http.post(
            path, json=body, headers={**self.headers, **kw.pop("headers", {})}, **kw
        )

    async def relogin(self) -> None:
        """A new token: the clock may have moved past the old one's expiry."""
        self.headers = bearer(await get_token(self.http, self.credential))

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers=self.headers)

    async def file(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.post("/v1/reports", body)
        assert response.status_code == 201, response.text
        report: dict[str, Any] = response.json()
        return report


async def member(client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime) -> Member:
    credential = await make_credential(session, runtime)
    return Member(client, credential, await get_token(client, credential))


@pytest.fixture
async def other(client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime) -> Member:
    return await member(client, session, runtime)


async def test_filing_a_report_answers_201_with_its_location_and_a_receipt_id(
    acme: Member, clock: FrozenClock, runtime: Runtime
) -> None:
    body = payload(clock)
    response = await acme.post("/v1/reports", body)
    assert response.status_code == 201, response.text
    report = response.json()
    assert response.headers["location"] == f"/v1/reports/{report['id']}"
    assert report["status"] == "active"
    assert report["subject"] == body["subject"]
    occurred = dt.datetime.fromisoformat(body["occurred_at"])
    assert dt.datetime.fromisoformat(report["expires_at"]) == occurred.replace(
        year=occurred.year + 5
    )
    assert report["audit_event_id"] is not None
    async with runtime.read_sessionmaker() as read:
        event = await read.get(AuditEventRow, report["audit_event_id"])
    assert event is not None
    assert event.tag == "report:refund:submitted"
    assert event.subject == body["subject"]


async def test_resending_the_same_report_is_idempotent_and_a_different_one_conflicts(
    acme: Member, clock: FrozenClock
) -> None:
    body = payload(clock)
    first = await acme.file(body)
    again = await acme.post("/v1/reports", body)
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    changed = await acme.post("/v1/reports", {**body, "amount_minor": 1})
    assert changed.status_code == 409
    assert changed.headers["location"] == f"/v1/reports/{first['id']}"
    assert changed.json()["existing_report_id"] == first["id"]


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"amount_minor": 0}, "amount_minor"),
        ({"currency": "yuan"}, "currency"),
        ({"evidence_sha256": ["nothex"]}, "evidence_sha256"),
        ({"evidence_sha256": []}, "evidence_sha256"),
        ({"case_ref": "has spaces in it"}, "case_ref"),
        ({"subject": "short"}, "subject"),
        ({"subject": "A" * 42 + "B"}, "subject"),  # 43 chars, but not canonical base64url
    ],
)
async def test_invalid_fields_are_named(
    acme: Member, clock: FrozenClock, override: dict[str, Any], field: str
) -> None:
    response = await acme.post("/v1/reports", payload(clock, **override))
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


async def test_nothing_in_the_future_and_confirmation_not_before_the_event(
    acme: Member, clock: FrozenClock
) -> None:
    tomorrow = (clock.now() + DAY).isoformat()
    for override in ({"occurred_at": tomorrow}, {"subject_notified_at": tomorrow}):
        assert (await acme.post("/v1/reports", payload(clock, **override))).status_code == 422
    early = payload(clock, confirmed_at=(clock.now() - 20 * DAY).isoformat())
    response = await acme.post("/v1/reports", early)
    assert response.json()["errors"][0]["field"] == "confirmed_at"
    naive = await acme.post("/v1/reports", payload(clock, occurred_at="2026-01-01T00:00:00"))
    assert naive.status_code == 422
    free_text = await acme.post("/v1/reports", payload(clock, note="the buyer lied"))
    assert free_text.status_code == 422


@pytest.mark.parametrize(
    "raw",
    ["+8613800138000", "13800138000", "138 0013 8000", "11010519491231002X", "buyer@example.com"],
)
async def test_a_raw_identifier_is_refused_and_never_echoed_or_logged(
    acme: Member, clock: FrozenClock, raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await acme.post("/v1/reports", payload(clock, subject=raw))
    assert response.status_code == 422
    assert "raw identifiers must never be sent" in response.json()["detail"]
    assert raw not in response.text
    assert all(
        raw not in record.getMessage() and raw not in str(record.__dict__)
        for record in caplog.records
    )


async def test_another_members_report_cannot_be_read_or_withdrawn_or_noticed(
    acme: Member, other: Member, clock: FrozenClock
) -> None:
    report = await acme.file(payload(clock))
    path = f"/v1/reports/{report['id']}"
    assert (await other.get(path)).status_code == 404
    assert (await other.post(f"{path}/withdrawal", {"reason": "other"})).status_code == 404
    notice = await other.post(f"{path}/notice", {"notified_at": clock.now().isoformat()})
    assert notice.status_code == 404
    listed = (await other.get("/v1/reports")).json()
    assert listed["reports"] == []
    assert (await acme.get(path)).status_code == 200


async def test_a_report_counts_only_after_notice_and_is_suspended_at_day_30(
    acme: Member, clock: FrozenClock, runtime: Runtime
) -> None:
    report = await acme.file(payload(clock, subject_notified_at=None))
    path = f"/v1/reports/{report['id']}"
    assert report["status"] == "pending_notice"
    clock.advance(30 * DAY - dt.timedelta(seconds=1))
    await acme.relogin()
    assert (await acme.get(path)).json()["status"] == "pending_notice"
    clock.advance(dt.timedelta(seconds=1))
    assert (await acme.get(path)).json()["status"] == "suspended"
    result = await maintenance.run(
        create_sessionmaker(runtime.engine), clock=clock, policy=runtime.policy
    )
    assert result is not None
    assert result.reports_suspended == 1
    noticed = await acme.post(f"{path}/notice", {"notified_at": clock.now().isoformat()})
    assert noticed.json()["status"] == "active"
    twice = await acme.post(f"{path}/notice", {"notified_at": clock.now().isoformat()})
    assert twice.status_code == 409


async def test_withdrawal_is_a_new_row_and_the_report_stops_counting(
    acme: Member, clock: FrozenClock, runtime: Runtime
) -> None:
    report = await acme.file(payload(clock))
    path = f"/v1/reports/{report['id']}/withdrawal"
    response = await acme.post(path, {"reason": "confirmed_in_error"})
    assert response.status_code == 200
    assert response.json()["status"] == "withdrawn"
    again = await acme.post(path, {"reason": "confirmed_in_error"})
    assert again.status_code == 409
    assert again.json()["current_state"] == "withdrawn"
    bad = await acme.post(path, {"reason": "because"})
    assert bad.status_code == 422
    async with runtime.read_sessionmaker() as read:
        actions = list(
            await read.scalars(
                sa.select(ReportAction.kind).where(
                    ReportAction.report_id == uuid.UUID(report["id"])
                )
            )
        )
        assert actions == ["withdrawal"]
        assert await read.get(Report, uuid.UUID(report["id"])) is not None
    async with runtime.engine.connect() as conn:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            await conn.execute(sa.text("DELETE FROM report_actions"))


async def test_a_report_vanishes_at_exactly_expires_at_and_retention_erases_it(
    acme: Member, clock: FrozenClock, runtime: Runtime
) -> None:
    report = await acme.file(payload(clock))
    path = f"/v1/reports/{report['id']}"
    expires = dt.datetime.fromisoformat(report["expires_at"])
    clock.set(expires - dt.timedelta(microseconds=1))
    await acme.relogin()
    assert (await acme.get(path)).status_code == 200
    clock.set(expires)
    assert (await acme.get(path)).status_code == 404
    assert (await acme.get("/v1/reports")).json()["reports"] == []
    result = await maintenance.run(
        create_sessionmaker(runtime.engine), clock=clock, policy=runtime.policy
    )
    assert result is not None
    assert result.reports_purged == 1
    async with runtime.read_sessionmaker() as read:
        tombstone = await read.get(Report, uuid.UUID(report["id"]))
        assert tombstone is not None
        assert (
            tombstone.subject,
            tombstone.case_ref,
            tombstone.amount_minor,
            tombstone.evidence,
        ) == (None,) * 4
        assert tombstone.member_id == acme.credential.member.id
        assert tombstone.filed_at is not None
        purged = await read.scalar(
            sa.select(AuditEventRow).where(AuditEventRow.tag == "report:retention:purged")
        )
        assert purged is not None
        assert report["id"] in purged.body


async def test_a_case_older_than_retention_cannot_be_filed(
    acme: Member, clock: FrozenClock
) -> None:
    old = (clock.now() - 6 * 365 * DAY).isoformat()
    response = await acme.post(
        "/v1/reports", payload(clock, occurred_at=old, confirmed_at=old, subject_notified_at=old)
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "occurred_at"


async def test_listing_filters_and_paginates_own_reports(acme: Member, clock: FrozenClock) -> None:
    subject = pseudonym()
    ids = [(await acme.file(payload(clock, subject=subject)))["id"] for _ in range(3)]
    await acme.file(payload(clock, category="empty_box"))
    first = (await acme.get("/v1/reports", subject=subject, limit=2)).json()
    second = (
        await acme.get("/v1/reports", subject=subject, limit=2, cursor=first["next_cursor"])
    ).json()
    assert [r["id"] for r in first["reports"] + second["reports"]] == ids
    assert second["next_cursor"] is None
    boxes = (await acme.get("/v1/reports", category="empty_box")).json()["reports"]
    assert [r["category"] for r in boxes] == ["empty_box"]
    await acme.post(f"/v1/reports/{ids[0]}/withdrawal", {"reason": "other"})
    withdrawn = (await acme.get("/v1/reports", status="withdrawn")).json()["reports"]
    assert [r["id"] for r in withdrawn] == [ids[0]]


async def test_a_batch_answers_per_item_and_a_bad_item_writes_nothing(
    acme: Member, clock: FrozenClock, runtime: Runtime
) -> None:
    good, duplicate = payload(clock), payload(clock)
    await acme.file(duplicate)
    items = [
        good,
        duplicate,
        payload(clock, subject="+8613800138000"),
        {"case_ref": "x"},
        payload(clock),
    ]
    response = await acme.post("/v1/reports:batch", {"reports": items})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["duplicate"], answer["rejected"]) == (2, 1, 2)
    statuses = [i["status"] for i in answer["items"]]
    assert statuses == ["accepted", "duplicate", "rejected", "rejected", "accepted"]
    assert answer["items"][2]["errors"][0]["field"] == "subject"
    assert "8613800138000" not in response.text
    async with runtime.read_sessionmaker() as read:
        count = await read.scalar(sa.select(sa.func.count()).select_from(Report))
        events = await read.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEventRow)
            .where(AuditEventRow.tag == "report:refund:submitted")
        )
    assert count == 3  # the earlier one and the two accepted
    assert events == 3


async def test_a_batch_retried_with_the_same_idempotency_key_files_nothing_twice(
    acme: Member, clock: FrozenClock, runtime: Runtime
) -> None:
    body = {"reports": [payload(clock), payload(clock)]}
    key = {"Idempotency-Key": "batch-2026-11-23-001"}
    first = await acme.post("/v1/reports:batch", body, headers=key)
    second = await acme.post("/v1/reports:batch", body, headers=key)
    assert second.status_code == 200
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    other_body = await acme.post("/v1/reports:batch", {"reports": [payload(clock)]}, headers=key)
    assert other_body.status_code == 409
    async with runtime.read_sessionmaker() as read:
        assert await read.scalar(sa.select(sa.func.count()).select_from(Report)) == 2


async def test_a_malformed_batch_is_one_clear_error(acme: Member) -> None:
    bodies: list[tuple[object, str]] = [
        ({"reports": []}, "reports"),
        ({"items": []}, "reports"),
        ([1, 2], "body"),
    ]
    for body, field in bodies:
        response = await acme.post("/v1/reports:batch", body)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == field
    unknown = (await acme.post("/v1/reports:batch", {"reports": [{}], "x": 1})).json()
    assert {"field": "x", "detail": "unknown field: remove it (the schema is at /docs)"} in (
        unknown["errors"]
    )


async def test_concurrent_duplicate_submissions_create_exactly_one_report(
    acme: Member, clock: FrozenClock, runtime: Runtime, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    body = payload(clock)
    responses = await asyncio.gather(*(acme.post("/v1/reports", body) for _ in range(8)))
    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) == 1
    assert set(codes) == {200, 201}
    assert len({r.json()["id"] for r in responses}) == 1
    async with runtime.read_sessionmaker() as read:
        assert await read.scalar(sa.select(sa.func.count()).select_from(Report)) == 1


async def test_reading_reports_is_audited(
    acme: Member, clock: FrozenClock, runtime: Runtime
) -> None:
    report = await acme.file(payload(clock))
    await acme.get(f"/v1/reports/{report['id']}")
    await acme.get("/v1/reports")
    async with runtime.read_sessionmaker() as read:
        tags = set(await read.scalars(sa.select(AuditEventRow.tag)))
    assert {"report:refund:submitted", "report:refund:read", "report:refund:listed"} <= tags


@pytest.mark.parametrize("pool_size", [1])
async def test_audited_reads_never_wait_on_their_own_pool(
    settings: Any, clock: FrozenClock, pool_size: int
) -> None:
    # Every request holds a pooled connection while its audit event commits. With one
    # connection in the request pool and ten concurrent audited reads, a writer that
    # drew from that pool would wait on itself until the pool timed out (503s).
    tight = settings.model_copy(update={"db_pool_size": pool_size, "db_pool_timeout_seconds": 3})
    app = create_app(tight, clock=clock)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            async with runtime.sessionmaker() as session:
                credential = await make_credential(session, runtime)
            reader = Member(http, credential, await get_token(http, credential))
            report = await reader.file(payload(clock))
            responses = await asyncio.gather(
                *(reader.get(f"/v1/reports/{report['id']}") for _ in range(10))
            )
    assert [r.status_code for r in responses] == [200] * 10


async def test_listing_refuses_times_without_an_offset(acme: Member, clock: FrozenClock) -> None:
    await acme.file(payload(clock))
    bad = await acme.get("/v1/reports", filed_since="2026-01-01T00:00:00")
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "query.filed_since"
    since = (clock.now() - DAY).isoformat()
    assert len((await acme.get("/v1/reports", filed_since=since)).json()["reports"]) == 1
    assert (await acme.get("/v1/reports", filed_until=since)).json()["reports"] == []
