"""The console in the reader's language: a Chinese browser gets Chinese pages, the
language switch sticks, times are shown in Beijing time with UTC on hover, and every
audit tag has its meaning in both languages."""

from __future__ import annotations

import datetime as dt
import re

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from api.console.web import LOCALE_COOKIE
from ledger import i18n
from ledger.audit.glossary import GLOSSARY
from ledger.audit.tags import Tag
from ledger.runtime import Runtime
from tests.console.test_auditor_pages import _some_events
from tests.console.test_sessions import auditor, sign_in

__all__ = ["auditor"]  # fixtures

CHINESE = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}


async def test_a_chinese_browser_gets_the_console_in_chinese(
    client: httpx.AsyncClient, auditor: str
) -> None:
    client.cookies.delete(LOCALE_COOKIE)
    client.headers.update(CHINESE)
    page = await client.get("/console/sign-in")
    assert '<html lang="zh-CN">' in page.text
    assert "<h1>登录</h1>" in page.text
    assert "用户名" in page.text
    await sign_in(client, auditor)
    home = await client.get("/console")
    assert "作为审计员，您可以查看全部内容" in home.text
    assert ">审计日志</a>" in home.text
    wrong = await client.get("/console/members")  # an operator's page
    assert wrong.status_code == 403
    assert "您的角色（审计员）不能进行这项操作" in wrong.text


async def test_the_language_switch_sticks_and_goes_back(
    client: httpx.AsyncClient, auditor: str
) -> None:
    client.cookies.delete(LOCALE_COOKIE)
    client.headers.update(CHINESE)
    await sign_in(client, auditor)
    switched = await client.get("/console/language", params={"to": "en", "next": "/console/audit"})
    assert switched.status_code == 303
    assert switched.headers["location"] == "/console/audit"
    assert f"{LOCALE_COOKIE}=en" in switched.headers["set-cookie"]
    page = await client.get("/console/audit")  # the browser still prefers Chinese
    assert '<html lang="en">' in page.text
    assert "<h1>Audit log</h1>" in page.text
    assert 'lang="zh-CN"' in page.text  # the switch back, labelled in Chinese
    assert "中文" in page.text
    elsewhere = await client.get(
        "/console/language", params={"to": "zh-CN", "next": "https://elsewhere.example/"}
    )
    assert elsewhere.headers["location"] == "/console"  # never off the console
    assert "<h1>审计日志</h1>" in (await client.get("/console/audit")).text


async def test_times_are_shown_in_beijing_time_with_utc_on_hover(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, auditor: str
) -> None:
    event_id = await _some_events(client, session, runtime)
    client.cookies.delete(LOCALE_COOKIE)
    client.headers.update(CHINESE)
    await sign_in(client, auditor)
    page = (await client.get(f"/console/audit/events/{event_id}")).text
    found = re.search(r'<time datetime="([^"]+)Z" title="([^"]+) UTC">([^<]+)</time>', page)
    assert found is not None, page
    utc_iso, utc_shown, local = found.groups()

    at = dt.datetime.fromisoformat(utc_iso).replace(tzinfo=dt.UTC)
    assert local == i18n.format_time(at, "zh-CN", "Asia/Shanghai")
    assert "年" in local
    assert utc_shown == at.strftime("%Y-%m-%d %H:%M:%S")
    assert "事件" in page  # and the tag's meaning, in Chinese
    assert "成员平台的凭证获取了访问令牌" in page or "访问令牌申请被拒绝" in page


async def test_the_glossary_explains_every_tag_in_both_languages(
    client: httpx.AsyncClient, auditor: str
) -> None:
    assert set(GLOSSARY) == set(Tag)
    for meaning in GLOSSARY.values():
        assert i18n.gettext("zh-CN", meaning) != meaning  # translated
    await sign_in(client, auditor)
    english = (await client.get("/console/glossary")).text
    client.cookies.set(LOCALE_COOKIE, "zh-CN")
    chinese = (await client.get("/console/glossary")).text
    for tag in Tag:
        assert f'id="{tag.value}"' in english
        assert i18n.gettext("en", GLOSSARY[tag]).replace("'", "&#39;") in english
        assert i18n.gettext("zh-CN", GLOSSARY[tag]) in chinese
