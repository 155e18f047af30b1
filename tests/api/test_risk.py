"""The pre-refund risk query through HTTP: audited first, explained, never naming members."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Scope
from ledger.audit.models import AuditEventRow
from ledger.clock import FrozenClock
from ledger.runtime import Runtime
from ledger.scoring import policies
from ledger.scoring.score import ScoringPolicy
from tests.api.test_reports import DAY, Member, payload, pseudonym
from tests.factories import bearer, get_token, make_credential, op


def query(subject: str, **overrides: Any) -> dict[str, Any]:
    body = {"subject": subject, "purpose": "refund_review", "reference": "refund-8841"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


async def events(runtime: Runtime, **where: Any) -> list[AuditEventRow]:
    async with runtime.read_sessionmaker() as read:
        clauses = [getattr(AuditEventRow, k) == v for k, v in where.items()]
        return list(
            await read.scalars(sa.select(AuditEventRow).where(*clauses).order_by(AuditEventRow.id))
        )


async def test_a_query_is_scored_explained_and_audited_before_it_is_answered(
    acme: Member, shop: Member, clock: FrozenClock, runtime: Runtime
) -> None:
    subject = pseudonym()
    await acme.file(
        payload(
            clock, subject=subject, category="forged_evidence", confirmed_at=clock.now().isoformat()
        )
    )
    await shop.file(
        payload(
            clock,
            subject=subject,
            category="empty_box",
            occurred_at=(clock.now() - 40 * DAY).isoformat(),
            confirmed_at=(clock.now() - 30 * DAY).isoformat(),
        )
    )
    response = await shop.post(
        "/v1/risk/query", query(subject), headers={"Accept-Language": "en-US,en;q=0.9"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-language"] == "en"
    answer = response.json()
    assert (answer["score"], answer["band"], answer["recommendation"]) == (
        62,
        "high",
        "manual_review",
    )
    assert [r["code"] for r in answer["reasons"]] == ["R01", "R02"]
    assert answer["counts"]["distinct_members"] == 2
    assert "did not make this decision" in answer["explanation"]["decision"]
    assert "object to any report" in answer["explanation"]["your_rights"]
    assert answer["explanation"]["summary"] == (
        "2 confirmed cases of refund abuse are recorded for this buyer. They were reported "
        "by 2 platforms. The risk is high."
    )
    # Never names the reporting members.
    for name in (acme.credential.member.name, shop.credential.member.name):
        assert name not in response.text
    assert str(acme.credential.member.id) not in response.text
    # Recorded, with purpose, reference and band, before the answer was sent.
    (event,) = await events(runtime, tag="risk:subject:queried", outcome="success")
    assert event.id == answer["audit_event_id"]
    assert (event.subject, event.purpose, event.reference) == (
        subject,
        "refund_review",
        "refund-8841",
    )
    assert '"band":"high"' in event.body


async def test_no_reports_and_only_dead_reports_get_the_same_answer(
    acme: Member, clock: FrozenClock
) -> None:
    nobody, gone = pseudonym(), pseudonym()
    report = await acme.file(payload(clock, subject=gone))
    await acme.post(f"/v1/reports/{report['id']}/withdrawal", {"reason": "other"})
    a = (await acme.post("/v1/risk/query", query(nobody))).json()
    b = (await acme.post("/v1/risk/query", query(gone))).json()
    for answer in (a, b):
        answer.pop("subject")
        answer.pop("audit_event_id")
    assert a == b
    assert (a["score"], a["reasons"]) == (0, [])


@pytest.mark.parametrize("missing", ["purpose", "reference"])
async def test_a_query_without_purpose_or_reference_is_refused_and_the_refusal_audited(
    acme: Member, runtime: Runtime, missing: str
) -> None:
    response = await acme.post("/v1/risk/query", query(pseudonym(), **{missing: None}))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == missing
    (refused,) = await events(runtime, tag="risk:subject:queried", outcome="refused")
    assert missing in refused.body


async def test_a_purpose_outside_the_closed_list_is_refused(acme: Member) -> None:
    response = await acme.post("/v1/risk/query", query(pseudonym(), purpose="marketing"))
    assert response.status_code == 422


async def test_a_raw_identifier_is_refused_unechoed(acme: Member, runtime: Runtime) -> None:
    response = await acme.post("/v1/risk/query", query("+8613800138000"))
    assert response.status_code == 422
    assert "raw identifiers must never be sent" in response.json()["detail"]
    assert "8613800138000" not in response.text
    (refused,) = await events(runtime, tag="risk:subject:queried", outcome="refused")
    assert refused.subject is None
    assert "8613800138000" not in refused.body


async def test_the_batch_query_answers_each_and_audits_each(
    acme: Member, clock: FrozenClock, runtime: Runtime
) -> None:
    subjects = [pseudonym() for _ in range(3)]
    await acme.file(payload(clock, subject=subjects[0]))
    body = {"queries": [query(s) for s in subjects] + [query("x")]}
    response = await acme.post("/v1/risk/query:batch", body)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["status"] for i in items] == ["answered", "answered", "answered", "rejected"]
    assert items[0]["answer"]["score"] > 0
    answered = await events(runtime, tag="risk:subject:queried", outcome="success")
    assert sorted(e.subject or "" for e in answered) == sorted(subjects)
    assert len(await events(runtime, tag="risk:subject:queried", outcome="refused")) == 1
    too_many = await acme.post("/v1/risk/query:batch", {"queries": [query(pseudonym())] * 101})
    assert too_many.status_code == 422


async def test_the_query_needs_risk_read(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    narrow = await make_credential(session, runtime, scopes=frozenset({Scope.REPORTS_WRITE}))
    token = await get_token(client, narrow)
    response = await client.post("/v1/risk/query", json=query(pseudonym()), headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["required_scope"] == "risk:read"


async def test_queries_show_in_the_buyers_file(
    acme: Member, shop: Member, clock: FrozenClock
) -> None:
    subject = pseudonym()
    await shop.post("/v1/risk/query", query(subject, purpose="account_review"))
    disclosed = (
        await acme.post(
            "/v1/subjects/disclosure",
            {"subject": subject, "purpose": "subject_request", "reference": "r-1"},
        )
    ).json()
    assert [(i["member"], i["purpose"]) for i in disclosed["inquiries"]] == [
        (shop.credential.member.name, "account_review")
    ]


async def test_every_answer_names_the_policy_in_force(
    acme: Member, runtime: Runtime, session: AsyncSession
) -> None:
    before = (await acme.post("/v1/risk/query", query(pseudonym()))).json()
    assert before["policy_version"] == "2026-11-23.1"
    document = policies.document_of(ScoringPolicy(version="2026-12-01.1"))
    await policies.set_policy(session, op(runtime), json.dumps(document))
    await session.commit()
    runtime.risk.policies = policies.PolicySource()  # no waiting for the cache
    after = (await acme.post("/v1/risk/query", query(pseudonym()))).json()
    assert after["policy_version"] == "2026-12-01.1"
    changes = await events(runtime, tag="policy:scoring:set")
    assert [c.body for c in changes] == ['{"version":"2026-12-01.1"}']


async def test_the_buyers_texts_come_in_their_language(
    acme: Member, shop: Member, clock: FrozenClock
) -> None:
    """Chinese by default and for a Chinese browser, English when asked; the codes do
    not change; an explicit locale wins over the header; the answer says which."""
    subject = pseudonym()
    await acme.file(payload(clock, subject=subject, category="forged_evidence"))
    default = await shop.post("/v1/risk/query", query(subject))
    chinese = await shop.post(
        "/v1/risk/query", query(subject), headers={"Accept-Language": "zh-CN,zh;q=0.9"}
    )
    english = await shop.post(
        "/v1/risk/query", query(subject, locale="en"), headers={"Accept-Language": "zh-CN"}
    )
    for response, language in ((default, "zh-CN"), (chinese, "zh-CN"), (english, "en")):
        assert response.status_code == 200, response.text
        assert response.headers["content-language"] == language
        assert "accept-language" in response.headers["vary"].lower()
    zh, en = chinese.json(), english.json()
    assert zh["explanation"] == default.json()["explanation"]
    assert zh["explanation"]["summary"] == (
        "该买家有 1 起经平台确认的恶意退款记录。共有 1 家平台报送。风险等级：中。"
    )
    assert "退款账本" in zh["explanation"]["decision"]
    assert "异议" in zh["explanation"]["your_rights"]
    assert [r["code"] for r in zh["reasons"]] == [r["code"] for r in en["reasons"]] == ["R01"]
    assert zh["reasons"][0]["text"] == "有平台确认，一笔退款申请使用了伪造或篡改过的证据。"
    assert en["reasons"][0]["text"].startswith("A platform confirmed a refund claim")
    assert zh["band"] == en["band"]  # codes stay codes


async def test_an_unknown_locale_is_refused(acme: Member) -> None:
    response = await acme.post("/v1/risk/query", query(pseudonym(), locale="fr"))
    assert response.status_code == 422
    assert "locale" in response.text
