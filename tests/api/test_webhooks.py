"""Corrections reach the members that looked, through a real receiver on loopback that
verifies every signature and fails as told. The worker runs in the test's process on
the test's clock, so retries are made due by moving the clock, not by waiting."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from refund_ledger_client import InvalidWebhook, verify_webhook
from sqlalchemy.ext.asyncio import AsyncSession

from ledger import maintenance
from ledger.access.permissions import Scope
from ledger.access.principals import ClientPrincipal
from ledger.audit.models import AuditEventRow
from ledger.audit.tags import Tag
from ledger.clock import FrozenClock
from ledger.config import Settings
from ledger.reports import lifecycle
from ledger.runtime import Runtime
from ledger.webhooks.delivery import DeliveryConfig, DeliveryWorker, backoff, signature
from ledger.webhooks.endpoints import generate_secret
from ledger.webhooks.models import WebhookDelivery, WebhookEvent
from tests.api.test_reports import DAY, Member, member, payload, pseudonym
from tests.factories import op
from tests.live import free_port
from tests.webhook_receiver import ERROR, HANG_UP, SLOW, TRICKLE, Receiver, receiving

GUIDE = (Path(__file__).resolve().parents[2] / "docs" / "corrections.md").read_text("utf-8")
# The receiver is on loopback, which a production worker refuses to call.
CONFIG = DeliveryConfig(timeout=1.0, lease=dt.timedelta(seconds=30), allow_loopback=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving(Receiver(port=free_port(), slow_seconds=2.0)) as r:
        yield r


@pytest.fixture
async def worker(runtime: Runtime, clock: FrozenClock) -> AsyncIterator[DeliveryWorker]:
    w = DeliveryWorker(runtime.sessionmaker, runtime.second_factor_key, clock=clock, config=CONFIG)
    yield w
    await w.close()


async def subscribe(who: Member, receiver: Receiver, **more: Any) -> dict[str, Any]:
    body = {"url": receiver.url, "event_types": ["subject.assessment_changed"], **more}
    response = await who.post("/v1/webhooks/endpoints", body)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    receiver.secrets.append(made["secret"])
    return made


async def query(who: Member, subject: str, reference: str) -> None:
    body = {"subject": subject, "purpose": "refund_review", "reference": reference}
    response = await who.post("/v1/risk/query", body)
    assert response.status_code == 200, response.text


async def withdraw(who: Member, report: dict[str, Any]) -> None:
    response = await who.post(
        f"/v1/reports/{report['id']}/withdrawal", {"reason": "confirmed_in_error"}
    )
    assert response.status_code == 200, response.text


async def drain(worker: DeliveryWorker, clock: FrozenClock, rounds: int = 12) -> None:
    """Rounds of delivery, the clock moved past each retry's wait in between."""
    for attempt in range(1, rounds + 1):
        await worker.run_once()
        clock.advance(backoff(attempt, jitter=1.3))


def test_signatures_match_the_standard_webhooks_vector() -> None:
    # The specification's example (standard-webhooks, libraries' tests).
    at = dt.datetime.fromtimestamp(1614265330, dt.UTC)
    assert (
        signature(
            ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",),
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            at,
            '{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_the_retry_schedule_grows_to_twelve_hours_and_is_jittered() -> None:
    waits = [backoff(n, jitter=1.0) for n in range(1, 10)]
    assert waits[:4] == [dt.timedelta(seconds=s) for s in (5, 20, 80, 320)]
    assert waits[-1] == dt.timedelta(hours=12)
    assert {backoff(3) for _ in range(20)} != {backoff(3)}
    assert all(
        dt.timedelta(seconds=64) <= backoff(3) <= dt.timedelta(seconds=96) for _ in range(50)
    )


async def test_a_withdrawal_reaches_the_members_that_queried_and_no_one_else(
    acme: Member,
    shop: Member,
    client: httpx.AsyncClient,
    session: AsyncSession,
    runtime: Runtime,
    clock: FrozenClock,
    receiver: Receiver,
    worker: DeliveryWorker,
) -> None:
    subject = pseudonym()
    report = await acme.file(payload(clock, subject=subject))
    long_ago = await member(client, session, runtime)  # queried 31 days before the change
    never = await member(client, session, runtime)  # never asked about this buyer
    for who in (shop, long_ago, never):
        await subscribe(who, receiver)
    await query(long_ago, subject, "refund-old")
    clock.advance(31 * DAY)
    for who in (acme, shop, long_ago, never):
        await who.relogin()
    await query(shop, subject, "refund-7")
    await query(shop, subject, "refund-8")
    assert (await shop.post("/v1/risk/query", {"subject": subject})).status_code == 422

    await withdraw(acme, report)
    await drain(worker, clock, rounds=1)

    (got,) = receiver.wait_for(1)
    assert got.verified
    assert got.body["type"] == "subject.assessment_changed"
    data = got.body["data"]
    assert data["subject"] == subject
    assert data["cause"] == "withdrawn"
    assert data["assessment"]["band"] == "none"
    assert data["assessment"]["score"] == 0
    assert data["assessment"]["policy_version"]
    assert data["your_queries"]["references"] == ["refund-8", "refund-7"]
    # Never another member: neither the reporter's id nor its name.
    said = str(got.body)
    assert str(acme.credential.member.id) not in said
    assert acme.credential.member.name not in said
    correction = await session.scalar(
        sa.select(AuditEventRow).where(AuditEventRow.tag == Tag.CORRECTION_QUEUED.value)
    )
    assert correction is not None
    assert correction.subject == subject
    assert '"members":1' in correction.body.replace(" ", "")


async def test_no_event_is_kept_for_a_change_that_rolled_back(
    acme: Member, shop: Member, runtime: Runtime, clock: FrozenClock, receiver: Receiver
) -> None:
    subject = pseudonym()
    report = await acme.file(payload(clock, subject=subject))
    await subscribe(shop, receiver)
    await query(shop, subject, "refund-1")
    principal = ClientPrincipal(
        member_id=acme.credential.member.id,
        client_id=acme.credential.client_id,
        scopes=frozenset(Scope),
        token_id="t",
        token_expires_at=0,
    )
    async with runtime.sessionmaker() as session:
        await session.begin()
        await lifecycle.withdraw(
            session,
            op(runtime),
            principal,
            uuid.UUID(report["id"]),
            lifecycle.WithdrawalReason.OTHER,
            policy=runtime.policy,
        )
        assert await session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)) == 1
        await session.rollback()
    async with runtime.sessionmaker() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)) == 0


async def test_every_fault_is_retried_with_the_same_webhook_id_until_delivered(
    acme: Member,
    shop: Member,
    session: AsyncSession,
    clock: FrozenClock,
    receiver: Receiver,
    worker: DeliveryWorker,
) -> None:
    subject = pseudonym()
    report = await acme.file(payload(clock, subject=subject))
    await subscribe(shop, receiver)
    await query(shop, subject, "refund-1")
    receiver.script = [ERROR, SLOW, HANG_UP, TRICKLE]
    await withdraw(acme, report)
    await drain(worker, clock)
    assert [r.answered for r in receiver.received] == [ERROR, SLOW, HANG_UP, TRICKLE, "ok"]
    assert len({r.webhook_id for r in receiver.received}) == 1
    assert all(r.verified for r in receiver.received)
    delivery = await session.scalar(sa.select(WebhookDelivery))
    assert delivery is not None
    assert (delivery.state.value, delivery.attempts) == ("delivered", 5)
    await session.rollback()  # no read left open on SQLite's one file
    await shop.relogin()
    log = (await shop.get("/v1/webhooks/deliveries")).json()["deliveries"]
    assert [(d["state"], d["attempts"], d["webhook_id"]) for d in log] == [
        ("delivered", 5, receiver.received[0].webhook_id)
    ]


async def test_a_receiver_that_was_down_gets_the_event_when_it_is_back(
    acme: Member, shop: Member, clock: FrozenClock, worker: DeliveryWorker
) -> None:
    receiver = Receiver(port=free_port())
    subject = pseudonym()
    report = await acme.file(payload(clock, subject=subject))
    await subscribe(shop, receiver)
    await query(shop, subject, "refund-1")
    await withdraw(acme, report)
    await drain(worker, clock, rounds=2)  # refused: nothing listens on the port
    await shop.relogin()
    (log,) = (await shop.get("/v1/webhooks/deliveries")).json()["deliveries"]
    assert (log["state"], log["attempts"], log["last_error"]) == ("pending", 2, "connect_failed")
    with receiving(receiver):
        await drain(worker, clock, rounds=1)
        (got,) = receiver.wait_for(1)
    assert got.webhook_id == log["webhook_id"]


async def test_an_endpoint_failing_for_three_days_is_disabled_and_audited(
    acme: Member,
    shop: Member,
    session: AsyncSession,
    clock: FrozenClock,
    receiver: Receiver,
    worker: DeliveryWorker,
) -> None:
    subject = pseudonym()
    report = await acme.file(payload(clock, subject=subject))
    made = await subscribe(shop, receiver)
    await query(shop, subject, "refund-1")
    receiver.script = [ERROR] * 100
    await withdraw(acme, report)
    await drain(worker, clock, rounds=20)
    await shop.relogin()
    (endpoint,) = (await shop.get("/v1/webhooks/endpoints")).json()["endpoints"]
    assert (endpoint["state"], endpoint["disabled_reason"]) == ("disabled", "failing")
    (log,) = (await shop.get("/v1/webhooks/deliveries")).json()["deliveries"]
    assert log["state"] == "failed"
    disabled = await session.scalar(
        sa.select(AuditEventRow).where(AuditEventRow.tag == Tag.WEBHOOK_ENDPOINT_DISABLED.value)
    )
    assert disabled is not None
    assert made["endpoint"]["id"] in disabled.body
    await session.rollback()
    # Turned on again, the member replays what it missed, with the same webhook-id.
    receiver.script = []
    turned = await shop.post(f"/v1/webhooks/endpoints/{endpoint['id']}/state", {"state": "enabled"})
    assert turned.status_code == 200, turned.text
    since = (clock.now() - 10 * DAY).isoformat()
    replayed = await shop.post(f"/v1/webhooks/endpoints/{endpoint['id']}/replay", {"since": since})
    assert replayed.json()["replayed"] == 1
    await drain(worker, clock, rounds=1)
    (got,) = receiver.wait_for(1)
    assert got.webhook_id == log["webhook_id"]


async def test_a_rotated_secret_signs_beside_the_old_one_for_a_day(
    acme: Member, shop: Member, clock: FrozenClock, receiver: Receiver, worker: DeliveryWorker
) -> None:
    made = await subscribe(shop, receiver)
    old = made["secret"]
    rotated = await shop.post(f"/v1/webhooks/endpoints/{made['endpoint']['id']}/secret", {})
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old
    receiver.secrets = [new]
    for _ in range(2):
        subject = pseudonym()
        report = await acme.file(payload(clock, subject=subject))
        await query(shop, subject, "refund-1")
        await withdraw(acme, report)
        await drain(worker, clock, rounds=1)
        clock.advance(DAY)
        await acme.relogin()
        await shop.relogin()
    first, second = receiver.wait_for(2)
    assert len(first.signature.split()) == 2  # the new secret's and the old one's
    assert len(second.signature.split()) == 1  # a day later, the new one's alone
    assert first.verified
    assert second.verified
    assert verify_webhook(old, first.raw, first.headers).id == first.webhook_id
    with pytest.raises(InvalidWebhook):
        verify_webhook(old, second.raw, second.headers)


async def test_the_sdk_verifies_a_delivery_and_refuses_a_forged_one(
    acme: Member, shop: Member, clock: FrozenClock, receiver: Receiver, worker: DeliveryWorker
) -> None:
    made = await subscribe(shop, receiver)
    subject = pseudonym()
    report = await acme.file(payload(clock, subject=subject))
    await query(shop, subject, "refund-9")
    await withdraw(acme, report)
    await worker.run_once()
    (got,) = receiver.wait_for(1)
    event = verify_webhook(made["secret"], got.raw, got.headers)
    assert (event.id, event.type) == (got.webhook_id, "subject.assessment_changed")
    assert event.data["subject"] == subject
    forged = got.raw.replace(b'"withdrawn"', b'"upheld"')
    with pytest.raises(InvalidWebhook):
        verify_webhook(made["secret"], forged, got.headers)
    with pytest.raises(InvalidWebhook):
        verify_webhook(generate_secret(), got.raw, got.headers)


async def events_for(session: AsyncSession, who: Member) -> list[dict[str, Any]]:
    """The member's outbox events, oldest first (what its endpoints are sent)."""
    rows = await session.scalars(
        sa.select(WebhookEvent.payload)
        .where(WebhookEvent.member_id == who.credential.member.id)
        .order_by(WebhookEvent.created_at, WebhookEvent.id)
    )
    found = [json.loads(p) for p in rows]
    await session.rollback()
    return found


async def test_one_dispute_names_the_buyer_once_and_reaches_every_reporting_member(
    acme: Member,
    shop: Member,
    client: httpx.AsyncClient,
    session: AsyncSession,
    runtime: Runtime,
    clock: FrozenClock,
) -> None:
    subject = pseudonym()
    theirs = await acme.file(payload(clock, subject=subject))
    ours = await shop.file(payload(clock, subject=subject))
    buyers_platform = await member(client, session, runtime)
    asker = await member(client, session, runtime)
    await query(asker, subject, "refund-3")
    opened = await buyers_platform.post(
        "/v1/disputes", {"subject": subject, "reference": "ticket-1"}
    )
    assert opened.status_code == 201, opened.text
    dispute = opened.json()
    assert sorted(i["report_id"] for i in dispute["items"]) == sorted([theirs["id"], ours["id"]])
    for who, report in ((acme, theirs), (shop, ours)):
        (event,) = await events_for(session, who)
        assert event["type"] == "dispute.opened"
        assert event["data"]["report_ids"] == [report["id"]]  # its own report, no other
        assert event["data"]["deadline"] == dispute["deadline"]
        said = json.dumps(event)
        for other in (acme, shop, buyers_platform):
            assert str(other.credential.member.id) not in said
        (item,) = (await who.get("/v1/disputes", assigned="me")).json()["items"]
        assert item["report_id"] == report["id"]

    # Three days before the deadline, each reporting member is reminded, once.
    clock.advance(17 * DAY + dt.timedelta(minutes=1))
    for _ in range(2):
        await maintenance.run(runtime.sessionmaker, clock=clock, policy=runtime.policy)
    for who in (acme, shop):
        assert [e["type"] for e in await events_for(session, who)] == [
            "dispute.opened",
            "dispute.deadline_near",
        ]
    # One member upholds its report; the other lets the deadline pass. The member that
    # asked about the buyer hears of both.
    for who in (acme, shop, asker):
        await who.relogin()
    upheld = await acme.post(
        f"/v1/disputes/{dispute['id']}/reports/{theirs['id']}/resolution",
        {"outcome": "upheld", "reason_code": "evidence_rechecked", "evidence_sha256": "a" * 64},
    )
    assert upheld.status_code == 200, upheld.text
    clock.advance(3 * DAY)
    await maintenance.run(runtime.sessionmaker, clock=clock, policy=runtime.policy)
    corrections = [e["data"] for e in await events_for(session, asker)]
    assert [(c["cause"], c["assessment"]["active_reports"]) for c in corrections] == [
        ("upheld", 2),
        ("suppressed", 1),
    ]
    assert corrections[0]["your_queries"]["references"] == ["refund-3"]


async def test_a_report_without_notice_is_suspended_and_its_member_told(
    acme: Member, session: AsyncSession, runtime: Runtime, clock: FrozenClock
) -> None:
    report = await acme.file(payload(clock, subject_notified_at=None))
    clock.advance(31 * DAY)
    await maintenance.run(runtime.sessionmaker, clock=clock, policy=runtime.policy)
    (event,) = await events_for(session, acme)
    assert event["type"] == "report.suspended"
    assert event["data"]["report_id"] == report["id"]
    assert event["data"]["reason"] == "no_notice"


async def test_an_expired_report_is_a_correction_for_those_who_asked(
    acme: Member, shop: Member, session: AsyncSession, runtime: Runtime, clock: FrozenClock
) -> None:
    subject = pseudonym()
    occurred = clock.now() - 5 * 365 * DAY
    await acme.file(
        payload(
            clock,
            subject=subject,
            occurred_at=occurred.isoformat(),
            confirmed_at=(occurred + DAY).isoformat(),
            subject_notified_at=(occurred + 2 * DAY).isoformat(),
        )
    )
    await query(shop, subject, "refund-5")
    clock.advance(10 * DAY)
    await maintenance.run(runtime.sessionmaker, clock=clock, policy=runtime.policy)
    (event,) = await events_for(session, shop)
    assert (event["data"]["cause"], event["data"]["assessment"]["band"]) == ("expired", "none")


async def test_endpoints_must_be_https_to_a_public_host_and_the_secret_is_shown_once(
    shop: Member, settings: Settings
) -> None:
    refused = {
        "http://risk.example.com/hook": "https://",
        "ftp://risk.example.com/hook": "https://",
        "https://10.0.0.8/hook": "private",
        "https://[::1]/hook": "private",
        "https://user:pw@risk.example.com/hook": "no user",
        "not a url": "https://",
    }
    for url, says in refused.items():
        response = await shop.post(
            "/v1/webhooks/endpoints", {"url": url, "event_types": ["dispute.opened"]}
        )
        assert response.status_code == 422, url
        assert says in response.json()["errors"][0]["detail"], url
        assert url not in response.text or url == "not a url"
    made = await shop.post(
        "/v1/webhooks/endpoints",
        {"url": "https://risk.example.com/hook", "event_types": ["dispute.opened"]},
    )
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    assert secret.startswith("whsec_")
    listed = await shop.get("/v1/webhooks/endpoints")
    assert secret not in listed.text
    assert secret[6:] not in listed.text
    bad_type = await shop.post(
        "/v1/webhooks/endpoints",
        {"url": "https://risk.example.com/hook", "event_types": ["report.everything"]},
    )
    assert bad_type.status_code == 422


async def test_old_events_are_deleted_once_every_delivery_has_ended(
    acme: Member,
    shop: Member,
    session: AsyncSession,
    runtime: Runtime,
    clock: FrozenClock,
    receiver: Receiver,
    worker: DeliveryWorker,
) -> None:
    subject = pseudonym()
    report = await acme.file(payload(clock, subject=subject))
    made = await subscribe(shop, receiver)
    await query(shop, subject, "refund-1")
    await withdraw(acme, report)
    await worker.run_once()
    clock.advance(31 * DAY)
    await shop.relogin()
    # A replay of the old event keeps it until that delivery has ended too.
    since = (clock.now() - 40 * DAY).isoformat()
    path = f"/v1/webhooks/endpoints/{made['endpoint']['id']}/replay"
    assert (await shop.post(path, {"since": since})).json()["replayed"] == 1
    kept = await maintenance.run(runtime.sessionmaker, clock=clock, policy=runtime.policy)
    assert kept is not None
    assert kept.webhook_events_purged == 0
    await worker.run_once()
    assert len(receiver.wait_for(2)) == 2
    gone = await maintenance.run(runtime.sessionmaker, clock=clock, policy=runtime.policy)
    assert gone is not None
    assert gone.webhook_events_purged == 1
    assert await events_for(session, shop) == []


async def test_the_receiver_snippet_in_the_guide_handles_real_deliveries(
    acme: Member, shop: Member, clock: FrozenClock, receiver: Receiver, worker: DeliveryWorker
) -> None:
    (snippet,) = re.findall(r"^```python\n(.*?)^```", GUIDE, re.S | re.M)
    made = await subscribe(shop, receiver)
    reopened: list[tuple[str, dict[str, Any]]] = []
    namespace: dict[str, Any] = {
        "current_secret": made["secret"],
        "reopen_for_review": lambda reference, assessment: reopened.append((reference, assessment)),
        "queue_dispute": lambda *args: None,
    }
    exec(compile(snippet, "docs/corrections.md", "exec"), namespace)  # noqa: S102
    subject = pseudonym()
    report = await acme.file(payload(clock, subject=subject))
    await query(shop, subject, "refund-41")
    await withdraw(acme, report)
    await worker.run_once()
    (got,) = receiver.wait_for(1)
    handle = namespace["handle"]
    assert handle(got.raw, got.headers) == 200
    assert handle(got.raw, got.headers) == 200  # the same event again: handled once
    assert [(r, a["band"]) for r, a in reopened] == [("refund-41", "none")]
    assert handle(got.raw.replace(b"refund-41", b"refund-99"), got.headers) == 400


async def test_a_name_that_leads_into_a_private_network_is_not_called(
    acme: Member, shop: Member, runtime: Runtime, clock: FrozenClock, receiver: Receiver
) -> None:
    # An https:// name passes registration; at delivery it resolves to loopback, which
    # a production worker refuses: a member's endpoint cannot reach the ledger's network.
    body = {
        "url": f"https://localhost:{receiver.port}/ledger-events",
        "event_types": ["subject.assessment_changed"],
    }
    assert (await shop.post("/v1/webhooks/endpoints", body)).status_code == 201
    subject = pseudonym()
    report = await acme.file(payload(clock, subject=subject))
    await query(shop, subject, "refund-1")
    await withdraw(acme, report)
    strict = DeliveryWorker(
        runtime.sessionmaker,
        runtime.second_factor_key,
        clock=clock,
        config=DeliveryConfig(timeout=1.0),
    )
    try:
        await strict.run_once()
    finally:
        await strict.close()
    assert receiver.received == []
    (log,) = (await shop.get("/v1/webhooks/deliveries")).json()["deliveries"]
    assert (log["state"], log["last_error"]) == ("pending", "private_address")
