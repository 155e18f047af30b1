"""The second factor in Chromium: an operator (whose role requires one) sets it up on a
phone-sized screen in Chinese, then signs in with an authenticator code, and in English
with a recovery code."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pyotp
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, ViewportSize, expect
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Role
from ledger.config import Settings
from ledger.runtime import Runtime
from tests.browser.test_console import PASSWORD, sign_in_in_chinese
from tests.factories import make_user

PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """As shipped: operators must have a second factor."""
    return settings.model_copy(update={"second_factor_roles": Settings().second_factor_roles})


async def test_an_operator_sets_up_a_second_factor_and_signs_in_with_it(
    live: tuple[str, FastAPI], browser: Browser, session: AsyncSession, runtime: Runtime,
    shots: Path,
) -> None:  # fmt: skip
    base, _ = live
    await make_user(session, runtime, username="olga", role=Role.OPERATOR, password=PASSWORD)
    context = await browser.new_context(locale="zh-CN", viewport=PHONE)
    page = await context.new_page()
    await sign_in_in_chinese(page, base, "olga", "/members")
    # Nothing opens before the second factor is set up.
    await expect(page.get_by_role("heading", level=2, name="设置身份验证器应用")).to_be_visible()
    await expect(page.get_by_text("您的角色要求开启两步验证，请先完成设置再继续。")).to_be_visible()
    await expect(page.get_by_role("img", name="供身份验证器应用扫描的二维码")).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await page.screenshot(path=shots / "zh-second-factor-setup.png", full_page=True)
    key = (await page.locator("#totp-key").inner_text()).replace(" ", "")
    totp = pyotp.TOTP(key)
    await page.get_by_label("应用上显示的验证码").fill(totp.now())
    await page.get_by_role("button", name="开启两步验证").click()

    await expect(page.get_by_role("heading", level=2, name="您的恢复码")).to_be_visible()
    codes = [(await item.inner_text()).strip() for item in await page.locator("ol.codes li").all()]
    assert len(codes) == 10
    assert all(re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){3}", code) for code in codes)
    await page.screenshot(path=shots / "zh-recovery-codes.png", full_page=True)
    await page.get_by_role("link", name="我已妥善保存，继续").click()
    await expect(page.get_by_role("heading", level=1, name="成员平台")).to_be_visible()

    # Again, from the start: the password, then the code (the next step's: the one just
    # used is spent, and one step of drift is allowed).
    await page.get_by_role("button", name="退出登录").click()
    await sign_in_in_chinese(page, base, "olga")
    await expect(page.get_by_role("heading", level=1, name="输入验证码")).to_be_visible()
    assert await page.get_by_role("navigation").count() == 0
    await page.screenshot(path=shots / "zh-sign-in-code.png", full_page=True)
    await page.get_by_label("验证码").fill("000000")
    await page.get_by_role("button", name="登录", exact=True).click()
    await expect(page.get_by_role("alert")).to_have_text("验证码错误")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    await page.get_by_label("验证码").fill(totp.at(later))
    await page.get_by_role("button", name="登录", exact=True).click()
    await expect(page.get_by_role("heading", level=1, name="olga，您好")).to_be_visible()
    await context.close()

    # In English, on a desktop, with a recovery code instead of the phone.
    page = await (await browser.new_context(locale="en")).new_page()
    await page.goto(f"{base}/console")
    await page.get_by_label("Username").fill("olga")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Your one-time code")).to_be_visible()
    await page.get_by_label("Code").fill(codes[0].lower())
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Welcome, olga")).to_be_visible()
    await page.get_by_role("link", name="olga (operator)").click()
    await expect(page.get_by_text("9 recovery codes left.")).to_be_visible()
    await page.screenshot(path=shots / "account.png", full_page=True)
