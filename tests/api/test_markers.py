"""Protective markers: a buyer whose identity was misused asks a platform to say so;
every answer about them then advises verifying who is asking, not treating them as
abusive, until the buyer has it removed or it lapses."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Scope
from ledger.audit.models import AuditEventRow
from ledger.audit.tags import Tag
from ledger.clock import FrozenClock
from ledger.i18n import gettext
from ledger.markers.service import ADVICE
from ledger.runtime import Runtime
from tests.api.test_evidence import check, photo
from tests.api.test_reports import DAY, Member, payload, pseudonym
from tests.client.test_evidence import PUBLISHED
from tests.factories import bearer, get_token, make_credential


async def place(who: Member, subject: str, reference: str = "ticket-1") -> dict[str, Any]:
    response = await who.post("/v1/subjects/markers", {"subject": subject, "reference": reference})
    assert response.status_code == 201, response.text
    marker: dict[str, Any] = response.json()
    return marker


async def risk(who: Member, subject: str, **headers: str) -> dict[str, Any]:
    response = await who.post(
        "/v1/risk/query",
        {"subject": subject, "purpose": "refund_review", "reference": "refund-1"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def tags(session: AsyncSession, subject: str) -> list[str]:
    rows = await session.scalars(
        sa.select(AuditEventRow.tag)
        .where(AuditEventRow.subject == subject)
        .order_by(AuditEventRow.id)
    )
    found = list(rows)
    await session.rollback()
    return found


async def test_a_marker_advises_identity_checks_in_every_answer_until_removed(
    acme: Member, shop: Member, session: AsyncSession, clock: FrozenClock
) -> None:
    subject = pseudonym()
    assert (await risk(shop, subject))["protective_marker"] is None
    marker = await place(acme, subject)
    assert (marker["kind"], marker["in_force"]) == ("identity_misused", True)
    assert marker["expires_at"] == (clock.now() + 730 * DAY).isoformat().replace("+00:00", "Z")

    answer = await risk(shop, subject)
    assert (answer["score"], answer["band"]) == (0, "none")  # the score is not touched
    assert answer["recommendation"] == "manual_review"  # a person checks who this is
    notice = answer["protective_marker"]
    assert notice["kind"] == "identity_misused"
    assert notice["advice"] == gettext("zh-CN", ADVICE)
    assert (await risk(shop, subject, **{"Accept-Language": "en"}))["protective_marker"][
        "advice"
    ] == ADVICE
    checked = await shop.post(
        "/v1/evidence:check", {**check(photo(PUBLISHED["misc/c.png"])), "subject": subject}
    )
    assert checked.status_code == 200, checked.text
    assert checked.json()["protective_marker"]["kind"] == "identity_misused"
    assert checked.json()["recommendation"] == "manual_review"
    unmarked = await shop.post("/v1/evidence:check", check(photo(PUBLISHED["misc/c.png"])))
    assert unmarked.json()["protective_marker"] is None

    assert (
        await shop.post("/v1/subjects/markers", {"subject": subject, "reference": "t-2"})
    ).status_code == 409
    removal = {"subject": subject, "reference": "ticket-3", "at_buyers_request": False}
    path = f"/v1/subjects/markers/{marker['id']}/removal"
    refused = await shop.post(path, removal)
    assert refused.status_code == 422
    assert "buyer's own request" in refused.json()["errors"][0]["detail"]
    removed = await shop.post(path, removal | {"at_buyers_request": True})
    assert removed.status_code == 200, removed.text
    assert (removed.json()["in_force"], removed.json()["removed_at"]) == (False, answer_at(clock))
    after = await risk(shop, subject)
    assert (after["protective_marker"], after["recommendation"]) == (None, "proceed")
    assert (await shop.post(path, removal | {"at_buyers_request": True})).status_code == 404

    logged = await tags(session, subject)
    for tag in (Tag.MARKER_PLACED, Tag.MARKER_REMOVED):
        assert logged.count(tag.value) == 1
    shown = await session.scalars(
        sa.select(AuditEventRow.body).where(
            AuditEventRow.subject == subject, AuditEventRow.tag == Tag.RISK_QUERIED.value
        )
    )
    assert ["identity_misused" in body for body in shown] == [False, True, True, False]
    await session.rollback()


def answer_at(clock: FrozenClock) -> str:
    return clock.now().isoformat().replace("+00:00", "Z")


async def test_a_marker_lapses_after_two_years_unless_renewed(
    acme: Member, clock: FrozenClock
) -> None:
    subject = pseudonym()
    marker = await place(acme, subject)
    clock.advance(700 * DAY)
    await acme.relogin()
    renewed = await acme.post(
        f"/v1/subjects/markers/{marker['id']}/renewal", {"subject": subject, "reference": "t-4"}
    )
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["renewed_at"] == answer_at(clock)
    clock.advance(700 * DAY)
    await acme.relogin()
    assert (await risk(acme, subject))["protective_marker"] is not None
    clock.advance(31 * DAY)
    await acme.relogin()
    assert (await risk(acme, subject))["protective_marker"] is None
    # A lapsed marker is not renewed; the buyer asks for a new one.
    assert (
        await acme.post(
            f"/v1/subjects/markers/{marker['id']}/renewal",
            {"subject": subject, "reference": "t-5"},
        )
    ).status_code == 404
    await place(acme, subject, "t-6")


async def test_reports_filed_under_a_marker_say_so_and_the_disclosure_lists_it_all(
    acme: Member, shop: Member, clock: FrozenClock
) -> None:
    subject = pseudonym()
    before = await acme.file(payload(clock, subject=subject))
    assert before["filed_under_marker"] is False
    clock.advance(DAY)
    await acme.relogin()
    await shop.relogin()
    marker = await place(shop, subject)
    during = await acme.file(payload(clock, subject=subject))
    assert during["filed_under_marker"] is True
    listed = (await acme.get("/v1/reports")).json()["reports"]
    assert {r["id"]: r["filed_under_marker"] for r in listed} == {
        before["id"]: False,
        during["id"]: True,
    }
    opened = await shop.post("/v1/disputes", {"subject": subject, "reference": "ticket-8"})
    assert opened.status_code == 201, opened.text
    disclosed = await shop.post(
        "/v1/subjects/disclosure",
        {"subject": subject, "purpose": "subject_request", "reference": "ask-1"},
    )
    assert disclosed.status_code == 200, disclosed.text
    file = disclosed.json()
    (shown,) = file["markers"]
    assert (shown["id"], shown["in_force"]) == (marker["id"], True)
    assert shown["placed_by"] == shop.credential.member.name
    (dispute,) = file["disputes"]
    assert dispute["opened_by"] == shop.credential.member.name
    assert sorted(i["report_id"] for i in dispute["items"]) == sorted([before["id"], during["id"]])
    assert {i["reporting_member"] for i in dispute["items"]} == {acme.credential.member.name}


async def test_placing_a_marker_needs_its_scope(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    credential = await make_credential(session, runtime, scopes=frozenset({Scope.RISK_READ}))
    headers = bearer(await get_token(client, credential))
    response = await client.post(
        "/v1/subjects/markers",
        json={"subject": pseudonym(), "reference": "t-1"},
        headers=headers,
    )
    assert response.status_code == 403
    assert response.json()["required_scope"] == "markers:write"
