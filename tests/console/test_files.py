"""The pages an inspection asks for: one report with everything that happened to it,
and a buyer's file as the buyer gets it; both recorded, neither echoing a raw
identifier."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit.models import AuditEventRow
from ledger.clock import FrozenClock
from ledger.runtime import Runtime
from tests.api.test_disputes_and_subjects import open_dispute, resolution_path
from tests.api.test_reports import Member, payload, pseudonym
from tests.console.test_sessions import auditor, sign_in
from tests.factories import get_token, make_credential, make_member

__all__ = ["auditor"]  # fixtures


async def _platform(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, name: str, shown: str
) -> Member:
    made = await make_member(session, clock=runtime.clock, name=name, display_name=shown)
    credential = await make_credential(session, runtime, member=made)
    return Member(client, credential, await get_token(client, credential))


async def test_a_report_page_holds_its_whole_story(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, clock: FrozenClock,
    auditor: str,
) -> None:  # fmt: skip
    jd = await _platform(client, session, runtime, "jd", "京东")
    shop = await _platform(client, session, runtime, "pdd", "拼多多")
    subject = pseudonym()
    filed = await jd.file(payload(clock, subject=subject, amount_minor=12900))
    said = await shop.post(
        "/v1/subjects/statements",
        {"subject": subject, "report_id": filed["id"], "text": "照片是我自己拍的"},
    )
    assert said.status_code == 201, said.text
    dispute = await open_dispute(shop, subject, filed["id"])
    withdrawn = await jd.post(
        resolution_path(dispute, filed["id"]),
        {"outcome": "withdrawn", "reason_code": "cannot_substantiate"},
    )
    assert withdrawn.status_code == 200
    await sign_in(client, auditor)
    page = (await client.get(f"/console/reports/{filed['id']}")).text
    assert "京东" in page  # display names
    assert "拼多多" in page
    assert 'id="report-status">withdrawn' in page
    assert "¥129.00" in page or "CN¥129.00" in page
    assert "照片是我自己拍的" in page
    assert "cannot_substantiate" in page
    assert f'href="/console/audit/events/{filed["audit_event_id"]}"' in page
    assert "dispute:case:opened" in page
    assert "dispute:report:resolved" in page
    assert "subject:statement:added" in page
    async with runtime.read_sessionmaker() as read:
        looked = await read.scalar(
            sa.select(AuditEventRow).where(AuditEventRow.body.like('%"view":"report"%'))
        )
    assert looked is not None
    assert looked.subject == subject
    client.cookies.set("ledger_locale", "zh-CN")
    chinese = (await client.get(f"/console/reports/{filed['id']}")).text
    assert "伪造或篡改的证据" in chinese
    assert "报送平台" in chinese
    missing = await client.get("/console/reports/01938f0c-5b7e-7a31-9d2c-0f4b8e6a1c22")
    assert missing.status_code == 404


async def test_a_buyers_file_is_what_the_buyer_gets(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, clock: FrozenClock,
    auditor: str,
) -> None:  # fmt: skip
    jd = await _platform(client, session, runtime, "jd", "京东")
    shop = await _platform(client, session, runtime, "pdd", "拼多多")
    subject = pseudonym()
    await jd.file(payload(clock, subject=subject, category="empty_box"))
    asked = await shop.post(
        "/v1/risk/query", {"subject": subject, "purpose": "refund_review", "reference": "r-1"}
    )
    assert asked.status_code == 200
    marked = await shop.post("/v1/subjects/markers", {"subject": subject, "reference": "t-1"})
    assert marked.status_code == 201
    opened = await shop.post("/v1/disputes", {"subject": subject, "reference": "ticket-2"})
    assert opened.status_code == 201
    disclosed = await shop.post(
        "/v1/subjects/disclosure",
        {"subject": subject, "purpose": "subject_request", "reference": "ask-1", "locale": "en"},
    )
    await sign_in(client, auditor)
    page = (await client.get("/console/subjects", params={"subject": subject})).text
    assert "1 report held" in page
    assert "京东" in page
    assert "拼多多" in page
    assert "a false empty-box claim" in page
    assert disclosed.json()["how_to_dispute"] in page  # word for word what the buyer got
    assert "refund_review" in page
    # The marker, and the dispute with the member it went to, as in the disclosure.
    assert 'id="markers"' in page
    assert 'id="subject-disputes"' in page
    disputes = page[page.index('id="subject-disputes"') :]
    assert "京东" in disputes[: disputes.index("</table>")]
    raw = await client.get("/console/subjects", params={"subject": "+8613800138000"})
    assert "That is not a pseudonym" in raw.text
    assert "8613800138000" not in raw.text
