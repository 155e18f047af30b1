"""The auditor's activity charts with their signs of fishing, and the disputes view."""

from __future__ import annotations

import base64
import datetime as dt

import httpx
from refund_ledger_client.voprf import VOPRF, Suite
from sqlalchemy.ext.asyncio import AsyncSession

from ledger import maintenance
from ledger.clock import FrozenClock
from ledger.db import create_sessionmaker
from ledger.runtime import Runtime
from tests.api.test_disputes_and_subjects import open_dispute
from tests.api.test_reports import Member, member, payload, pseudonym
from tests.console.test_sessions import auditor, operator, sign_in

__all__ = ["auditor", "operator"]  # fixtures

DAY = dt.timedelta(days=1)


async def query(m: Member, subject: str, reference: str) -> None:
    body = {"subject": subject, "purpose": "refund_review", "reference": reference}
    assert (await m.post("/v1/risk/query", body)).status_code == 200


async def test_a_member_fishing_stands_out_with_the_reasons(
    client: httpx.AsyncClient,
    session: AsyncSession,
    runtime: Runtime,
    clock: FrozenClock,
    auditor: str,
) -> None:
    steady = await member(client, session, runtime)
    fishing = await member(client, session, runtime)
    dictionary = await member(client, session, runtime)
    clock.advance(-27 * DAY)
    for day in range(27):  # a steady member: one refund, one query, every day
        await steady.relogin()
        await query(steady, pseudonym(), f"refund-{day}")
        await fishing.relogin()
        await query(fishing, pseudonym(), f"refund-f{day}")
        clock.advance(DAY)
    await steady.relogin()
    await fishing.relogin()
    await dictionary.relogin()
    for n in range(30):  # then 30 buyers in a day, under two references
        await query(fishing, pseudonym(), f"batch-{n % 2}")
    suite = Suite(VOPRF)
    blinded = [
        base64.urlsafe_b64encode(suite.blind(bytes([n]))[1]).rstrip(b"=").decode()
        for n in range(100)
    ]
    for _ in range(2):  # 200 pseudonyms made, never queried
        ok = await dictionary.post("/v1/pseudonyms:evaluate", {"blinded_elements": blinded})
        assert ok.status_code == 200

    await sign_in(client, auditor)
    page = await client.get("/console/activity")
    assert page.status_code == 200
    text = page.text
    fishing_part = text.split(f'id="m-{fishing.credential.member.id}"')[1].split("</section>")[0]
    assert "query spike: 30 queries in a recent day against a usual 1 a day" in fishing_part
    assert "queries not tied to a refund" in fishing_part
    steady_part = text.split(f'id="m-{steady.credential.member.id}"')[1].split("</section>")[0]
    assert "No sign of fishing" in steady_part
    # Charts people can read: pygal's, with day labels and values, on one scale per
    # kind of count (the fishing member's 30 sets the top of every queries chart),
    # and nothing the console's CSP would refuse.
    assert 'class="pygal-chart"' in steady_part
    assert "<script" not in text
    assert "<style" not in text
    queries_chart = steady_part.split('aria-label="risk queries: ')[1].split("</svg>")[0]
    assert ">30</text>" in queries_chart  # the shared top of the y axis
    assert ">15</text>" in queries_chart
    first_day = (clock.now() - 29 * DAY).strftime("%m-%d")  # labelled, then every 7th
    assert f">{first_day}</text>" in queries_chart
    assert "<title>risk queries: " in queries_chart
    dictionary_part = text.split(f'id="m-{dictionary.credential.member.id}"')[1]
    assert "evaluations out of line: 200 pseudonyms made for 0 risk queries" in dictionary_part


async def test_disputes_show_days_left_and_overdue_ones(
    client: httpx.AsyncClient,
    session: AsyncSession,
    runtime: Runtime,
    clock: FrozenClock,
    auditor: str,
) -> None:
    acme = await member(client, session, runtime)
    shop = await member(client, session, runtime)
    subject = pseudonym()
    filed = await acme.file(payload(clock, subject=subject))
    await open_dispute(shop, subject, filed["id"])
    await sign_in(client, auditor)
    page = await client.get("/console/disputes")
    assert "<td>20 days</td>" in page.text  # the time left, in words
    assert "No closed disputes." in page.text
    clock.advance(18 * DAY)
    await sign_in(client, auditor)
    soon = await client.get("/console/disputes")
    assert "2 days (due soon)" in soon.text
    clock.advance(3 * DAY)
    await sign_in(client, auditor)
    later = await client.get("/console/disputes")
    assert "No open disputes." in later.text
    assert "overdue: unverifiable" in later.text


async def test_operators_see_neither(client: httpx.AsyncClient, operator: str) -> None:
    await sign_in(client, operator)
    assert (await client.get("/console/activity")).status_code == 403
    assert (await client.get("/console/disputes")).status_code == 403


async def test_the_auditors_dashboard_says_what_needs_attention(
    client: httpx.AsyncClient,
    session: AsyncSession,
    runtime: Runtime,
    clock: FrozenClock,
    auditor: str,
) -> None:
    acme = await member(client, session, runtime)
    shop = await member(client, session, runtime)
    late, soon = pseudonym(), pseudonym()
    await open_dispute(shop, late, (await acme.file(payload(clock, subject=late)))["id"])
    clock.advance(18 * DAY)
    await acme.relogin()
    await shop.relogin()
    await open_dispute(shop, soon, (await acme.file(payload(clock, subject=soon)))["id"])
    clock.advance(3 * DAY)  # the first is past its deadline, the second not yet
    await shop.relogin()
    await maintenance.run(create_sessionmaker(runtime.engine), clock=clock, policy=runtime.policy)
    clock.advance(15 * DAY)  # the second is due within 3 days now
    await shop.relogin()
    for n in range(3):
        await query(shop, pseudonym(), f"refund-{n}")
    await runtime.audit.checkpoint()
    await sign_in(client, auditor)
    home = (await client.get("/console")).text
    assert "Newest checkpoint: tree size" in home
    assert "The log has not been verified yet." in home
    assert "Due within 3 days: 1" in home
    assert "Unanswered past their deadline, last 30 days: 1" in home
    assert '<p class="figure">3</p>' in home  # today's risk queries
    assert "No member shows any." in home
    client.cookies.set("ledger_locale", "zh-CN")
    chinese = (await client.get("/console")).text
    assert "3 天内到期：1" in chinese
    assert "今天的风险查询" in chinese
