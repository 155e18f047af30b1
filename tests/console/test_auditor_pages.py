"""The auditor's pages: the log filtered and exported, one event with its proof checked,
a verification run; and operators kept out of all of them."""

from __future__ import annotations

import csv
import io
import json

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit import runs
from ledger.audit.models import AuditEventRow
from ledger.runtime import Runtime
from tests.console.test_sessions import auditor, hidden, operator, sign_in, tags
from tests.factories import get_token, make_credential, make_member

__all__ = ["auditor", "operator"]  # fixtures


async def _some_events(client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime) -> int:
    credential = await make_credential(session, runtime)
    await get_token(client, credential)
    await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(credential.client_id, "x")
    )
    async with runtime.read_sessionmaker() as read:
        return int(await read.scalar(sa.select(sa.func.max(AuditEventRow.id))) or 0)


async def test_the_log_filters_pages_and_records_the_read(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, auditor: str
) -> None:
    await _some_events(client, session, runtime)
    await sign_in(client, auditor)
    refused = await client.get("/console/audit", params={"tag": "oauth:token:refused"})
    assert refused.status_code == 200
    assert "oauth:token:refused" in refused.text
    assert "oauth:token:issued</code>" not in refused.text
    everything = await client.get("/console/audit")
    assert "oauth:token:issued</code>" in everything.text
    assert (await tags(runtime)).count("audit:events:listed") == 2
    bad = await client.get("/console/audit", params={"subject": "+8613800138000"})
    assert "Check these filters: subject" in bad.text
    assert "+8613800138000" not in bad.text.split("Check these filters")[1].split("</p>")[0]


async def test_exports_are_the_filtered_events_in_jsonl_and_csv(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, auditor: str
) -> None:
    await _some_events(client, session, runtime)
    await sign_in(client, auditor)
    jsonl = await client.get("/console/audit/export.jsonl", params={"outcome": "refused"})
    records = [json.loads(line) for line in jsonl.text.splitlines()]
    assert records
    assert {r["event"]["outcome"] for r in records} == {"refused"}
    exported = await client.get("/console/audit/export.csv", params={"outcome": "refused"})
    assert exported.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [int(r["id"]) for r in rows] == [r["event"]["id"] for r in records]
    assert all(r["recorded_at"].endswith("Z") for r in rows)
    assert "attachment" in exported.headers["content-disposition"]
    assert "audit:events:exported" in await tags(runtime)


async def test_an_event_shows_its_proof_checked_against_the_latest_checkpoint(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, auditor: str
) -> None:
    last = await _some_events(client, session, runtime)
    await sign_in(client, auditor)
    pending = await client.get(f"/console/audit/events/{last}")
    assert "Not checkable yet" in pending.text
    await runtime.audit.checkpoint()
    page = await client.get(f"/console/audit/events/{last}")
    assert "Proof checked: this event is leaf" in page.text
    assert (await client.get("/console/audit/events/999999")).status_code == 404


async def test_a_verification_run_from_the_console_is_recorded(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, auditor: str
) -> None:
    await _some_events(client, session, runtime)
    await runtime.audit.checkpoint()
    await sign_in(client, auditor)
    page = await client.get("/console/integrity")
    assert "Signed checkpoints" in page.text
    started = await client.post(
        "/console/integrity/verify", data={"csrf_token": hidden(page.text, "csrf_token")}
    )
    assert started.status_code == 303  # the run goes on in the background
    await runtime.jobs.wait()
    result = await client.get("/console/integrity")
    assert "The log is intact" in result.text
    assert 'http-equiv="refresh"' not in result.text  # nothing running: no reload
    assert "audit:log:verified" in await tags(runtime)


async def test_operators_cannot_open_the_audit_pages(
    client: httpx.AsyncClient, runtime: Runtime, operator: str
) -> None:
    await sign_in(client, operator)
    for path in ["/console/audit", "/console/audit/events/1", "/console/integrity",
                 "/console/audit/export.csv"]:  # fmt: skip
        response = await client.get(path)
        assert response.status_code == 403, path
        assert "cannot do this" in response.text
    assert "console:request:refused" in await tags(runtime)


async def test_the_csv_opens_in_excel_with_chinese_names_and_meanings(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, auditor: str
) -> None:
    """UTF-8 with a BOM (Excel on a zh-CN machine reads it right), members by display
    name, each tag's meaning in the reader's language; ids and codes unchanged."""
    member = await make_member(session, clock=runtime.clock, name="jd", display_name="京东")
    credential = await make_credential(session, runtime, member=member)
    await get_token(client, credential)
    await sign_in(client, auditor)
    client.cookies.set("ledger_locale", "zh-CN")
    exported = await client.get("/console/audit/export.csv", params={"tag": "oauth:token:issued"})
    assert exported.headers["content-type"].startswith("text/csv; charset=utf-8")
    assert exported.content[:3] == b"\xef\xbb\xbf"
    (row,) = csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig")))
    assert row["actor_member"] == "京东"
    assert row["actor_member_id"] == str(member.id)
    assert row["tag"] == "oauth:token:issued"
    assert row["meaning"] == "成员平台的凭证获取了访问令牌。"
    assert row["recorded_at"].endswith("Z")  # exports keep UTC


async def test_a_verification_in_progress_shows_how_far_it_has_got_and_blocks_another(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, auditor: str
) -> None:
    await _some_events(client, session, runtime)
    await runtime.audit.checkpoint()
    running = await runs.start(runtime.sessionmaker, by="cli", clock=runtime.clock)
    await sign_in(client, auditor)
    page = await client.get("/console/integrity")
    assert f"Verifying: 0 of {running.total} leaves checked" in page.text
    assert '<meta http-equiv="refresh" content="2; url=/console/integrity">' in page.text
    assert "<progress" in page.text
    again = await client.post(
        "/console/integrity/verify", data={"csrf_token": hidden(page.text, "csrf_token")}
    )
    assert again.headers["location"] == "/console/integrity?busy=1"
    busy = await client.get(again.headers["location"])
    assert "A verification is already running" in busy.text
    assert [r.id for r in await runs.latest(runtime.sessionmaker)] == [running.id]
