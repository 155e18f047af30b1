"""The console in a real browser: Debian's Chromium, headless, driven by Playwright,
against the ledger served over a real socket.

Screenshots go to ``LEDGER_SCREENSHOT_DIR`` when it is set (docs/console.md shows the
ones in docs/console/), else to the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
from pathlib import Path

import httpx
from fastapi import FastAPI
from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Role
from ledger.runtime import Runtime
from tests.api.test_reports import pseudonym
from tests.factories import get_token, make_credential, make_member, make_user

PASSWORD = "correct horse battery staple"


async def sign_in(page: Page, base: str, username: str) -> None:
    await page.goto(f"{base}/console")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name=f"Welcome, {username}")).to_be_visible()


async def sign_in_in_chinese(page: Page, base: str, username: str, path: str = "") -> None:
    """The sign-in form as a zh-CN browser shows it, filled and sent."""
    await page.goto(f"{base}/console{path}")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()


async def test_an_auditor_filters_opens_an_event_sees_its_proof_and_exports(
    live: tuple[str, FastAPI],
    browser: Browser,
    session: AsyncSession,
    runtime: Runtime,
    client: httpx.AsyncClient,
    shots: Path,
) -> None:
    base, app = live
    user = await make_user(
        session, runtime, username="audrey", role=Role.AUDITOR, password=PASSWORD
    )
    credential = await make_credential(session, runtime)
    token = await get_token(client, credential)
    asked = await client.post(
        "/v1/risk/query",
        json={"subject": "A" * 43, "purpose": "refund_review", "reference": "refund-1"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert asked.status_code == 200
    served: Runtime = app.state.runtime
    page = await (await browser.new_context(locale="en-US")).new_page()
    await sign_in(page, base, user.username)
    await page.screenshot(path=shots / "auditor-home.png", full_page=True)

    await page.get_by_role("navigation").get_by_role("link", name="Audit log").click()
    await page.get_by_label("Event").select_option("oauth:token:issued")
    await page.get_by_role("button", name="Filter").click()
    rows = page.locator("tbody tr")
    await expect(rows.first).to_contain_text("oauth:token:issued")
    for text in await rows.all_inner_texts():
        assert "oauth:token:issued" in text
    await page.screenshot(path=shots / "audit-log-filtered.png", full_page=True)

    await served.audit.checkpoint()
    await rows.first.get_by_role("link").click()
    await expect(page.locator("#proof-status")).to_contain_text("Proof checked")
    await page.screenshot(path=shots / "audit-event-proof.png", full_page=True)

    await page.go_back()
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="JSON Lines").click()
    download = await download_info.value
    text = await asyncio.to_thread(Path(await download.path()).read_text)
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines
    assert {line["event"]["tag"] for line in lines} == {"oauth:token:issued"}

    await page.get_by_role("navigation").get_by_role("link", name="Activity").click()
    await expect(
        page.get_by_role("heading", name="Members' activity, last 30 days")
    ).to_be_visible()
    chart = page.locator("svg.pygal-chart").first
    await expect(chart).to_be_visible()
    assert await chart.get_attribute("role") == "img"
    assert "a day" in (await chart.get_attribute("aria-label") or "")
    await page.screenshot(path=shots / "activity.png", full_page=True)
    await page.get_by_role("navigation").get_by_role("link", name="Disputes").click()
    await expect(page.get_by_role("heading", name="Disputes", exact=True)).to_be_visible()

    await page.get_by_role("navigation").get_by_role("link", name="Integrity").click()
    await page.get_by_role("button", name="Verify the whole log now").click()
    await expect(page.locator("#verify-status")).to_contain_text("The log is intact")
    await page.screenshot(path=shots / "integrity-verified.png", full_page=True)


async def test_an_operator_issues_a_credential_and_suspends_the_member(
    live: tuple[str, FastAPI], browser: Browser, session: AsyncSession, runtime: Runtime,
    shots: Path,
) -> None:  # fmt: skip
    base, _ = live
    await make_user(session, runtime, username="olga", role=Role.OPERATOR, password=PASSWORD)
    page = await (await browser.new_context(locale="en-US")).new_page()
    await sign_in(page, base, "olga")
    await page.get_by_role("navigation").get_by_role("link", name="Members").click()
    await page.get_by_label("Short name").fill("acme")
    await page.get_by_role("button", name="Create member").click()
    await expect(page.get_by_role("heading", name="acme")).to_be_visible()

    await page.get_by_label("Label").fill("refund pipeline")
    await page.get_by_label("risk:read").check()
    await page.get_by_role("button", name="Issue credential").click()
    client_id = await page.locator("#new-client-id").inner_text()
    secret = await page.locator("#new-client-secret").inner_text()
    await page.screenshot(path=shots / "operator-credential-issued.png", full_page=True)

    async with httpx.AsyncClient(base_url=base) as api:
        token = (
            await api.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
            )
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert (await api.get("/v1/me", headers=headers)).status_code == 200

        await page.get_by_role("button", name="Suspend this member").click()
        await expect(page.locator("#member-status")).to_have_text("suspended")
        await page.screenshot(path=shots / "operator-member-suspended.png", full_page=True)
        refused = await api.get("/v1/me", headers=headers)
        assert refused.status_code == 401
        assert "suspended" in refused.json()["detail"]


async def test_a_forged_post_and_an_auditors_operator_action_are_refused(
    live: tuple[str, FastAPI], browser: Browser, session: AsyncSession, runtime: Runtime,
    shots: Path,
) -> None:  # fmt: skip
    base, _ = live
    await make_user(session, runtime, username="audrey", role=Role.AUDITOR, password=PASSWORD)
    page = await (await browser.new_context(locale="en-US")).new_page()
    await sign_in(page, base, "audrey")

    # A page on another site posting to the console with the user's cookie: SameSite
    # keeps the cookie home, and without the CSRF token the ledger refuses anyway.
    # (page.request sends no Accept-Language of its own: ask for English, as a page would.)
    forged = await page.request.post(
        f"{base}/console/integrity/verify", form={}, headers={"Accept-Language": "en"}
    )
    assert forged.status == 403
    assert "not sent from the console" in await forged.text()

    # The auditor goes straight to an operator page, and tries an operator action.
    await page.goto(f"{base}/console/members")
    await expect(page.get_by_role("alert")).to_contain_text("cannot do this")
    await page.screenshot(path=shots / "auditor-refused.png", full_page=True)
    await page.goto(f"{base}/console")
    token = await page.locator("input[name=csrf_token]").first.get_attribute("value")
    attempt = await page.request.post(
        f"{base}/console/members", form={"csrf_token": token or "", "name": "sneaky"}
    )
    assert attempt.status == 403


async def test_a_chinese_auditor_on_a_phone_reads_chinese_pages_that_fit(
    live: tuple[str, FastAPI],
    browser: Browser,
    session: AsyncSession,
    runtime: Runtime,
    client: httpx.AsyncClient,
    shots: Path,
) -> None:
    """zh-CN browser, 390 px wide: Chinese pages, Beijing times, nothing wider than the
    screen; the language switch changes the page and sticks."""
    base, _ = live
    await make_user(session, runtime, username="shen", role=Role.AUDITOR, password=PASSWORD)
    credential = await make_credential(session, runtime)
    await get_token(client, credential)  # an event or two to show
    context = await browser.new_context(
        locale="zh-CN", viewport={"width": 390, "height": 844}, device_scale_factor=2
    )
    page = await context.new_page()
    await page.goto(f"{base}/console")
    await expect(page.get_by_role("heading", name="登录")).to_be_visible()
    assert await page.get_attribute("html", "lang") == "zh-CN"
    await sign_in_in_chinese(page, base, "shen")
    await expect(page.get_by_role("heading", name="shen，您好")).to_be_visible()
    await page.screenshot(path=shots / "zh-home-phone.png", full_page=True)
    for path, heading in (
        ("/console/audit", "审计日志"),
        ("/console/glossary", "各类审计事件的含义"),
        ("/console/integrity", "审计日志的完整性"),
        ("/console/disputes", "异议"),
    ):
        await page.goto(f"{base}{path}")
        await expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        wide = await page.evaluate("document.documentElement.scrollWidth")
        assert wide <= 390, f"{path} is {wide} px wide on a 390 px screen"
    await page.goto(f"{base}/console/audit")
    await page.screenshot(path=shots / "zh-audit-log-phone.png", full_page=True)
    first = page.locator("tbody time").first
    assert "年" in (await first.inner_text())
    assert (await first.get_attribute("title") or "").endswith(" UTC")
    await page.get_by_role("link", name="English").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    await page.goto(f"{base}/console/glossary")
    await expect(page.get_by_role("heading", level=1)).to_have_text("What each audit event means")


async def test_an_inspection_in_chinese_a_report_a_buyers_file_and_an_excel_csv(
    live: tuple[str, FastAPI],
    browser: Browser,
    session: AsyncSession,
    runtime: Runtime,
    client: httpx.AsyncClient,
    shots: Path,
) -> None:
    """A compliance officer in a Chinese browser opens a report from the buyer's file,
    follows its first event to the proof, and downloads the CSV that Excel opens."""
    base, app = live
    await make_user(session, runtime, username="shen", role=Role.AUDITOR, password=PASSWORD)
    jd = await make_member(session, clock=runtime.clock, name="jd", display_name="京东")
    credential = await make_credential(session, runtime, member=jd)
    token = await get_token(client, credential)
    subject = pseudonym()
    now = runtime.clock.now()
    filed = await client.post(
        "/v1/reports",
        json={
            "case_ref": "case-77", "subject": subject, "category": "forged_evidence",
            "basis": "platform_review", "amount_minor": 12900, "currency": "CNY",
            "occurred_at": (now - dt.timedelta(days=10)).isoformat(),
            "confirmed_at": (now - dt.timedelta(days=2)).isoformat(),
            "subject_notified_at": (now - dt.timedelta(days=1)).isoformat(),
            "evidence_sha256": ["0" * 64],
        },
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert filed.status_code == 201, filed.text
    served: Runtime = app.state.runtime
    await served.audit.checkpoint()
    context = await browser.new_context(locale="zh-CN", accept_downloads=True)
    page = await context.new_page()
    await sign_in_in_chinese(page, base, "shen")
    await page.get_by_role("navigation").get_by_role("link", name="买家记录").click()
    await page.get_by_label("买家（假名）").fill(subject)
    await page.get_by_role("button", name="查看").click()
    await expect(page.get_by_role("heading", name="共有 1 条记录")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("京东")
    await page.screenshot(path=shots / "zh-buyers-file.png", full_page=True)
    await page.get_by_role("link", name="伪造或篡改的证据").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("记录 case-77")
    await expect(page.locator("main")).to_contain_text("¥129.00")
    await page.screenshot(path=shots / "zh-report.png", full_page=True)
    await page.locator("main table").last.get_by_role("link").first.click()
    await expect(page.locator("#proof-status")).to_contain_text("证明核验通过")

    await page.goto(f"{base}/console/audit")
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="CSV").click()
    download = await download_info.value
    raw = await asyncio.to_thread(Path(await download.path()).read_bytes)
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel on a zh-CN machine reads it as UTF-8
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert "京东" in {r["actor_member"] for r in rows}
    assert "成员平台报送了一条经确认的恶意退款记录。" in {r["meaning"] for r in rows}


async def test_a_new_user_must_choose_a_password_before_anything_else(
    live: tuple[str, FastAPI], browser: Browser, session: AsyncSession, runtime: Runtime,
    shots: Path,
) -> None:  # fmt: skip
    """An operator chose the first password: signing in leads to the change form, and
    only once the user has chosen their own does the console open."""
    base, _ = live
    await make_user(
        session, runtime, username="lin", role=Role.AUDITOR, password=PASSWORD,
        must_change_password=True,
    )  # fmt: skip
    page = await (await browser.new_context(locale="zh-CN")).new_page()
    await sign_in_in_chinese(page, base, "lin", "/audit")
    await expect(page.get_by_role("heading", level=1)).to_have_text("设置您自己的密码")
    assert "/console/password" in page.url
    await page.screenshot(path=shots / "zh-first-password.png", full_page=True)
    await page.goto(f"{base}/console/glossary")  # nothing else opens yet
    await expect(page.get_by_role("heading", level=1)).to_have_text("设置您自己的密码")
    mine = "一个只有我自己才知道的长密码"
    await page.get_by_label("当前密码").fill(PASSWORD)
    await page.get_by_label("新密码（至少 12 个字符）").fill(mine)
    await page.get_by_label("再次输入新密码").fill(mine)
    await page.get_by_role("button", name="设置新密码").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("各类审计事件的含义")
