"""Disputes (routing, transitions, the 20-day deadline), statements, and the buyer's file."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger import i18n, maintenance
from ledger.access.permissions import Scope
from ledger.audit.events import Actor
from ledger.audit.models import AuditEventRow
from ledger.audit.tags import Tag
from ledger.clock import FrozenClock
from ledger.context import Operation
from ledger.db import create_sessionmaker
from ledger.runtime import Runtime
from tests.api.test_reports import DAY, Member, digest, payload, pseudonym
from tests.factories import bearer, get_token, make_credential, make_member


async def open_dispute(by: Member, subject: str, *report_ids: str) -> dict[str, Any]:
    response = await by.post(
        "/v1/disputes",
        {"subject": subject, "report_ids": list(report_ids), "reference": "ticket-42"},
    )
    assert response.status_code == 201, response.text
    dispute: dict[str, Any] = response.json()
    return dispute


def resolution_path(dispute: dict[str, Any], report_id: str) -> str:
    return f"/v1/disputes/{dispute['id']}/reports/{report_id}/resolution"


async def test_a_dispute_is_routed_to_the_reporting_member(
    acme: Member, shop: Member, clock: FrozenClock
) -> None:
    subject = pseudonym()
    report = await acme.file(payload(clock, subject=subject))
    dispute = await open_dispute(shop, subject, report["id"])
    assert dispute["deadline"] == (clock.now() + 20 * DAY).isoformat().replace("+00:00", "Z")
    # For the buyer, in Chinese by default, the deadline as a date in Beijing time.
    day = i18n.format_day(clock.now() + 20 * DAY, "zh-CN", "Asia/Shanghai")
    assert dispute["items"][0]["for_the_buyer"] == (
        f"您的异议已转给报送这条记录的平台。该平台须在{day}前答复；逾期未答复的，这条记录不再计入。"
    )
    (item,) = (await acme.get("/v1/disputes", assigned="me", status="open")).json()["items"]
    assert item["report_id"] == report["id"]
    assert item["days_left"] == 20
    assert (await shop.get("/v1/disputes", assigned="me", status="open")).json()["items"] == []
    opened = (await shop.get("/v1/disputes", opened="me")).json()["disputes"]
    assert [d["id"] for d in opened] == [dispute["id"]]
    shown = (await acme.get(f"/v1/reports/{report['id']}")).json()
    assert (shown["status"], shown["open_disputes"]) == ("disputed", 1)
    assert (await acme.get("/v1/disputes")).status_code == 422


async def test_only_the_reporting_member_resolves_and_upholding_needs_new_evidence(
    acme: Member, shop: Member, clock: FrozenClock
) -> None:
    subject = pseudonym()
    report = await acme.file(payload(clock, subject=subject))
    dispute = await open_dispute(shop, subject, report["id"])
    path = resolution_path(dispute, report["id"])
    upheld = {
        "outcome": "upheld",
        "reason_code": "evidence_rechecked",
        "evidence_sha256": digest("recheck"),
    }
    assert (await shop.post(path, upheld)).status_code == 404
    missing = await acme.post(path, {"outcome": "upheld", "reason_code": "evidence_rechecked"})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "evidence_sha256"
    done = await acme.post(path, upheld)
    assert done.status_code == 200
    assert done.json()["resolution"] == "upheld"
    assert "保留这条记录" in done.json()["for_the_buyer"]
    again = await acme.post(path, {"outcome": "withdrawn", "reason_code": "other"})
    assert again.status_code == 409
    assert again.json()["current_state"] == "upheld"
    assert (await acme.get(f"/v1/reports/{report['id']}")).json()["status"] == "active"


async def test_withdrawing_in_answer_to_a_dispute_withdraws_the_report(
    acme: Member, shop: Member, clock: FrozenClock
) -> None:
    subject = pseudonym()
    report = await acme.file(payload(clock, subject=subject))
    dispute = await open_dispute(shop, subject, report["id"])
    response = await acme.post(
        resolution_path(dispute, report["id"]),
        {"outcome": "withdrawn", "reason_code": "cannot_substantiate"},
        headers={"Accept-Language": "en"},
    )
    assert response.json()["resolution"] == "withdrawn"
    assert response.json()["for_the_buyer"] == (
        "The platform that filed this report withdrew it after your objection. It no longer counts."
    )
    assert response.headers["content-language"] == "en"
    assert (await acme.get(f"/v1/reports/{report['id']}")).json()["status"] == "withdrawn"


async def test_an_unanswered_dispute_suppresses_the_report_at_day_20(
    acme: Member, shop: Member, clock: FrozenClock, runtime: Runtime
) -> None:
    subject = pseudonym()
    report = await acme.file(payload(clock, subject=subject))
    dispute = await open_dispute(shop, subject, report["id"])
    deadline = dt.datetime.fromisoformat(dispute["deadline"])
    clock.set(deadline - dt.timedelta(microseconds=1))
    await acme.relogin()
    assert (await acme.get(f"/v1/reports/{report['id']}")).json()["status"] == "disputed"
    clock.set(deadline)
    assert (await acme.get(f"/v1/reports/{report['id']}")).json()["status"] == "suppressed"
    late = await acme.post(
        resolution_path(dispute, report["id"]),
        {"outcome": "upheld", "reason_code": "new_evidence", "evidence_sha256": digest("late")},
    )
    assert late.status_code == 409
    assert late.json()["current_state"] == "unverifiable"
    result = await maintenance.run(
        create_sessionmaker(runtime.engine), clock=clock, policy=runtime.policy
    )
    assert result is not None
    assert result.disputes_unanswered == 1
    assert (await acme.get(f"/v1/reports/{report['id']}")).json()["status"] == "suppressed"
    (item,) = (await acme.get("/v1/disputes", assigned="me", status="unverifiable")).json()["items"]
    assert item["resolution"] == "unverifiable"
    assert "没有在期限内答复" in item["for_the_buyer"]


async def test_disputes_name_reports_on_the_subject_that_still_count(
    acme: Member, shop: Member, clock: FrozenClock
) -> None:
    subject = pseudonym()
    report = await acme.file(payload(clock, subject=subject))
    wrong_subject = await shop.post(
        "/v1/disputes", {"subject": pseudonym(), "report_ids": [report["id"]], "reference": "t-1"}
    )
    assert wrong_subject.status_code == 404
    await acme.post(f"/v1/reports/{report['id']}/withdrawal", {"reason": "other"})
    withdrawn = await shop.post(
        "/v1/disputes", {"subject": subject, "report_ids": [report["id"]], "reference": "t-2"}
    )
    assert withdrawn.status_code == 409
    raw = await shop.post(
        "/v1/disputes",
        {"subject": "+8613800138000", "report_ids": [report["id"]], "reference": "t-3"},
    )
    assert raw.status_code == 422
    assert "8613800138000" not in raw.text


async def test_a_statement_is_kept_and_shown_with_the_report(
    acme: Member, shop: Member, clock: FrozenClock
) -> None:
    subject = pseudonym()
    report = await acme.file(payload(clock, subject=subject))
    text = "The parcel arrived crushed; I sent photos the same day."
    added = await shop.post(
        "/v1/subjects/statements", {"subject": subject, "report_id": report["id"], "text": text}
    )
    assert added.status_code == 201, added.text
    too_long = await shop.post(
        "/v1/subjects/statements",
        {"subject": subject, "report_id": report["id"], "text": "x" * 201},
    )
    assert too_long.status_code == 422
    wrong = await shop.post(
        "/v1/subjects/statements", {"subject": pseudonym(), "report_id": report["id"], "text": text}
    )
    assert wrong.status_code == 404
    shown = (await acme.get(f"/v1/reports/{report['id']}")).json()
    assert [s["text"] for s in shown["statements"]] == [text]


async def test_the_buyers_file_holds_every_report_who_reported_it_and_who_looked(
    acme: Member, shop: Member, clock: FrozenClock, runtime: Runtime
) -> None:
    subject = pseudonym()
    active = await acme.file(payload(clock, subject=subject))
    pending = await shop.file(payload(clock, subject=subject, subject_notified_at=None))
    withdrawn = await acme.file(payload(clock, subject=subject))
    await acme.post(f"/v1/reports/{withdrawn['id']}/withdrawal", {"reason": "other"})
    await acme.file(payload(clock))  # another buyer's
    # A risk query by the shop (issue 5 records these; here through the audit API).
    op = Operation(Actor.client(shop.credential.member.id, shop.credential.client_id), clock.now())
    await runtime.audit.writer.write(
        op.event(Tag.RISK_QUERIED, subject=subject, purpose="refund_review")
    )

    response = await shop.post(
        "/v1/subjects/disclosure",
        {"subject": subject, "purpose": "subject_request", "reference": "req-7"},
    )
    assert response.status_code == 200, response.text
    disclosed = response.json()
    by_id = {r["report"]["id"]: r for r in disclosed["reports"]}
    assert set(by_id) == {active["id"], pending["id"], withdrawn["id"]}
    assert by_id[active["id"]]["reporting_member"] == acme.credential.member.name
    assert by_id[pending["id"]]["report"]["status"] == "pending_notice"
    assert by_id[withdrawn["id"]]["report"]["status"] == "withdrawn"
    assert [(i["member"], i["purpose"]) for i in disclosed["inquiries"]] == [
        (shop.credential.member.name, "refund_review")
    ]
    assert "异议" in disclosed["how_to_dispute"]  # for the buyer, Chinese by default
    assert response.headers["content-language"] == "zh-CN"
    english = await shop.post(
        "/v1/subjects/disclosure",
        {"subject": subject, "purpose": "subject_request", "reference": "req-8", "locale": "en"},
    )
    assert english.json()["how_to_dispute"].startswith("To object to a report")
    assert english.headers["content-language"] == "en"
    async with runtime.read_sessionmaker() as read:
        event = await read.scalar(
            sa.select(AuditEventRow).where(AuditEventRow.tag == "subject:file:disclosed")
        )
    assert event is not None
    assert (event.subject, event.purpose, event.reference) == (subject, "subject_request", "req-7")

    wrong_purpose = await shop.post(
        "/v1/subjects/disclosure", {"subject": subject, "purpose": "marketing", "reference": "x"}
    )
    assert wrong_purpose.status_code == 422


async def test_disclosure_needs_its_scope(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, acme: Member
) -> None:
    narrow = await make_credential(session, runtime, scopes=frozenset({Scope.REPORTS_WRITE}))
    token = await get_token(client, narrow)
    response = await client.post(
        "/v1/subjects/disclosure",
        json={"subject": pseudonym(), "purpose": "subject_request", "reference": "r"},
        headers=bearer(token),
    )
    assert response.status_code == 403
    assert response.json()["required_scope"] == "subjects:disclose"


async def test_the_buyers_file_names_platforms_as_people_know_them(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, shop: Member,
    clock: FrozenClock,
) -> None:  # fmt: skip
    jd = await make_member(session, clock=runtime.clock, name="jd", display_name="京东")
    credential = await make_credential(session, runtime, member=jd)
    reporter = Member(client, credential, await get_token(client, credential))
    subject = pseudonym()
    await reporter.file(payload(clock, subject=subject))
    disclosed = await shop.post(
        "/v1/subjects/disclosure",
        {"subject": subject, "purpose": "subject_request", "reference": "req-9"},
    )
    assert [r["reporting_member"] for r in disclosed.json()["reports"]] == ["京东"]
    me = await reporter.get("/v1/me")
    assert (me.json()["member"]["name"], me.json()["member"]["display_name"]) == ("jd", "京东")
