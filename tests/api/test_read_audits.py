"""Every read of ledger data is recorded once, by the core function that performs it,
under the request that asked (docs/audit.md). The API layer writes no events itself
(tests/test_architecture.py); this checks that each read still leaves exactly its one."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from ledger.audit.models import AuditEventRow
from ledger.audit.tags import Tag
from ledger.clock import FrozenClock
from ledger.runtime import Runtime
from tests.api.test_pseudonyms import SUITE, b64
from tests.api.test_reports import Member, payload, pseudonym


async def _events_after(runtime: Runtime, last: int) -> list[AuditEventRow]:
    async with runtime.read_sessionmaker() as read:
        rows = await read.scalars(
            sa.select(AuditEventRow).where(AuditEventRow.id > last).order_by(AuditEventRow.id)
        )
        return list(rows)


async def _last(runtime: Runtime) -> int:
    async with runtime.read_sessionmaker() as read:
        last = await read.scalar(sa.select(sa.func.coalesce(sa.func.max(AuditEventRow.id), 0)))
        return int(last or 0)


READS = [
    ("GET", "/v1/reports/{report_id}", None, Tag.REPORT_READ),
    ("GET", "/v1/reports", None, Tag.REPORTS_LISTED),
    ("GET", "/v1/disputes?assigned=me", None, Tag.DISPUTES_LISTED),
    ("GET", "/v1/disputes?opened=me", None, Tag.DISPUTES_LISTED),
    (
        "POST",
        "/v1/subjects/disclosure",
        {"subject": "{subject}", "purpose": "subject_request", "reference": "ask-1"},
        Tag.SUBJECT_DISCLOSED,
    ),
    (
        "POST",
        "/v1/risk/query",
        {"subject": "{subject}", "purpose": "refund_review", "reference": "r-1"},
        Tag.RISK_QUERIED,
    ),
    (
        "POST",
        "/v1/pseudonyms:evaluate",
        {"blinded_elements": ["{element}"]},
        Tag.PSEUDONYMS_EVALUATED,
    ),
]


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


@pytest.mark.parametrize(
    ("method", "path", "body", "tag"), READS, ids=[f"{r[0]} {r[1]}" for r in READS]
)
async def test_each_read_leaves_exactly_its_one_event(
    acme: Member,
    clock: FrozenClock,
    runtime: Runtime,
    method: str,
    path: str,
    body: Any,
    tag: Tag,
) -> None:
    subject = pseudonym()
    filed = await acme.file(payload(clock, subject=subject))
    names = {"report_id": filed["id"], "subject": subject, "element": b64(SUITE.blind(b"x")[1])}
    last = await _last(runtime)
    request_id = f"read-{tag.name.lower()}"
    response = await acme.http.request(
        method,
        _fill(path, names),
        json=_fill(body, names),
        headers={**acme.headers, "X-Request-ID": request_id},
    )
    assert response.status_code == 200, response.text
    (event,) = await _events_after(runtime, last)
    assert event.tag == tag.value
    assert event.outcome == "success"
    assert event.request_id == request_id
    assert event.actor_member_id == acme.credential.member.id
    if tag is Tag.RISK_QUERIED:  # the answer names its receipt (a report names its filing)
        assert response.json()["audit_event_id"] == event.id


async def test_a_refused_read_is_recorded_as_refused(acme: Member, runtime: Runtime) -> None:
    last = await _last(runtime)
    response = await acme.post("/v1/risk/query", {"subject": "x", "reference": "r-1"})
    assert response.status_code == 422
    (event,) = await _events_after(runtime, last)
    assert (event.tag, event.outcome) == (Tag.RISK_QUERIED.value, "refused")
    assert "x" not in str(event.body)  # the fields are named, never their values
