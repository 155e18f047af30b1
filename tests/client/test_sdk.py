"""The SDK against the real server: the sync client over real sockets (uvicorn in a
thread), the async client through the ASGI app. A flaky network is simulated at the
transport, below the SDK; everything above it is the real thing."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fastapi import FastAPI
from refund_ledger_client import (
    AsyncLedgerClient,
    AuthenticationError,
    InvalidReceipt,
    LedgerClient,
    PseudonymKeyError,
    RateLimited,
    RetryPolicy,
    TransportError,
)
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit.models import AuditEventRow
from ledger.cli import main
from ledger.clock import FrozenClock
from ledger.config import Settings
from ledger.pseudonyms.limits import EvaluationLimiter
from ledger.runtime import Runtime
from tests.api.test_reports import payload
from tests.factories import Credential, make_credential
from tests.live import free_port, serving
from tests.tampering import tamper

FAST = RetryPolicy(attempts=4, base=0.01, max_wait=0.5)


@pytest.fixture
def live(settings: Settings) -> Iterator[tuple[str, FastAPI]]:
    """The ledger served over HTTP on a free port, in a thread of its own."""
    with serving(settings) as served:
        yield served


@pytest.fixture
async def credential(session: AsyncSession, runtime: Runtime) -> Credential:
    return await make_credential(session, runtime)


class Flaky(httpx.BaseTransport):
    """Passes requests to a real transport, failing some first: ``plan`` maps a path to
    what its first requests get ("503" answers 503 with Retry-After: 0; "drop" forwards
    the request and then loses the answer)."""

    def __init__(self, plan: dict[str, list[str]]) -> None:
        self.inner = httpx.HTTPTransport()
        self.plan = plan
        self.sent: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.sent.append((request.method, path))
        step = self.plan.get(path, []).pop(0) if self.plan.get(path) else None
        if step == "503":
            return httpx.Response(
                503, headers={"Retry-After": "0"}, json={"type": "/problems/unavailable"}
            )
        response = self.inner.handle_request(request)
        if step == "drop":
            response.read()
            raise httpx.ReadError("connection lost after the request was sent")
        return response

    def close(self) -> None:
        self.inner.close()


def sdk(live: tuple[str, FastAPI], credential: Credential, **kw: Any) -> LedgerClient:
    # A generous deadline: this machine is shared; tests/client/test_deadlines.py and
    # the package's own tests check the deadline itself.
    kw.setdefault("deadline", 30.0)
    return LedgerClient(live[0], credential.client_id, credential.secret, retry=FAST, **kw)


async def test_pseudonymize_is_stable_verified_and_cached(
    live: tuple[str, FastAPI], credential: Credential, session: AsyncSession, runtime: Runtime
) -> None:
    transport = Flaky({})
    with sdk(live, credential, transport=transport) as ledger:
        a = ledger.pseudonymize("phone", "13800138000")
        b = ledger.pseudonymize("phone", "+86 138-0013-8000")  # the same buyer: cached
        evaluations = [p for _, p in transport.sent if p == "/v1/pseudonyms:evaluate"]
        assert a == b
        assert len(a) == 43
        assert len(evaluations) == 1
        many = ledger.pseudonymize_many([("email", "Buyer@Example.com"), ("phone", "13800138000")])
        assert many[1] == a
    # Another member's SDK, its own blinds: the same pseudonym.
    other = await make_credential(session, runtime)
    with sdk(live, other) as ledger:
        assert ledger.pseudonymize("phone", "13800138000") == a


async def test_a_query_and_a_report_end_to_end(
    live: tuple[str, FastAPI], credential: Credential, clock: FrozenClock
) -> None:
    with sdk(live, credential) as ledger:
        subject = ledger.pseudonymize("phone", "13900139000")
        first = ledger.query_risk(subject, reference="refund-1")
        assert (first.score, first.recommendation) == (0, "proceed")
        filed = ledger.report(**payload(clock, subject=subject))
        again = ledger.query_risk(subject, reference="refund-2")
        assert again.counts.active_reports == 1
        assert ledger.get_report(filed.id).case_ref == filed.case_ref
        file = ledger.disclose(subject, reference="access-request-7")
        assert [r.report.id for r in file.reports] == [filed.id]
        dispute = ledger.dispute(subject, [filed.id], reference="ticket-9")
        assert dispute.items[0].report_id == filed.id


async def test_a_lost_answer_never_files_a_report_twice(
    live: tuple[str, FastAPI], credential: Credential, clock: FrozenClock, runtime: Runtime
) -> None:
    transport = Flaky({"/v1/reports": ["drop"], "/v1/reports:batch": ["drop"]})
    with sdk(live, credential, transport=transport) as ledger:
        subject = ledger.pseudonymize("phone", "13700137000")
        one = payload(clock, subject=subject)
        filed = ledger.report(**one)  # sent twice: the second gets 409, resolved to it
        assert filed.case_ref == one["case_ref"]
        batch = [payload(clock, subject=subject) for _ in range(3)]
        result = ledger.report_batch(batch)  # sent twice with one Idempotency-Key
        assert result.accepted == 3
    assert transport.sent.count(("POST", "/v1/reports")) == 2
    assert transport.sent.count(("POST", "/v1/reports:batch")) == 2
    async with runtime.read_sessionmaker() as read:
        filed_events = await read.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEventRow)
            .where(AuditEventRow.tag == "report:refund:submitted")
        )
    assert filed_events == 4  # one report, then three: nothing twice


async def test_503_and_429_are_retried_after_retry_after(
    live: tuple[str, FastAPI], credential: Credential
) -> None:
    transport = Flaky({"/v1/risk/query": ["503", "503"]})
    with sdk(live, credential, transport=transport) as ledger:
        subject = ledger.pseudonymize("email", "a@example.com")
        assert ledger.query_risk(subject, reference="r-1").score == 0
    assert transport.sent.count(("POST", "/v1/risk/query")) == 3
    # A limit with no room for a minute: past max_wait, the SDK gives up and says so.
    runtime: Runtime = live[1].state.runtime
    runtime.evaluation_limiter = EvaluationLimiter("1/minute", {}, limiter=runtime.limiter)
    with sdk(live, credential) as ledger:
        ledger.pseudonymize("email", "b@example.com")
        with pytest.raises(RateLimited) as caught:
            ledger.pseudonymize("email", "c@example.com")
    assert (caught.value.retry_after or 0) >= 1
    assert caught.value.type == "/problems/rate-limited"


async def test_a_rejected_token_is_replaced_once(
    live: tuple[str, FastAPI], credential: Credential
) -> None:
    with sdk(live, credential) as ledger:
        subject = ledger.pseudonymize("email", "d@example.com")
        ledger._engine.token.value = "not-a-token"  # as if it had been revoked or rotated away
        assert ledger.query_risk(subject, reference="r-2").score == 0
    with LedgerClient(
        live[0], credential.client_id, "wrong-secret", retry=FAST, deadline=30.0
    ) as ledger:
        with pytest.raises(AuthenticationError) as caught:
            ledger.query_risk("A" * 43, reference="r-3")
        assert (caught.value.status, caught.value.error) == (401, "invalid_client")


async def test_a_pinned_key_must_match_the_published_one(
    live: tuple[str, FastAPI], credential: Credential
) -> None:
    runtime: Runtime = live[1].state.runtime
    right = runtime.pseudonym_key.published()["public_key"]
    with sdk(live, credential, pseudonym_key=right) as ledger:
        ledger.pseudonymize("email", "e@example.com")
    wrong = "ylM0mcskYgHq4VgP3h0TQHpjO_m7LbKbeg5pK7L0nQY"  # pkSm of the RFC 9497 vectors
    with sdk(live, credential, pseudonym_key=wrong) as ledger, pytest.raises(PseudonymKeyError):
        ledger.pseudonymize("email", "e@example.com")


async def test_an_audit_receipt_is_fetched_and_verified(
    live: tuple[str, FastAPI], credential: Credential
) -> None:
    runtime: Runtime = live[1].state.runtime
    with sdk(live, credential) as ledger:
        subject = ledger.pseudonymize("email", "f@example.com")
        answer = ledger.query_risk(subject, reference="r-4")
        await runtime.audit.checkpoint()
        keys = await asyncio.to_thread(httpx.get, f"{live[0]}/v1/audit/keys")
        key = keys.json()["keys"][0]["verifier_key"]
        event = ledger.audit_receipt(answer.audit_event_id, key)
    assert event["id"] == answer.audit_event_id
    assert event["tag"] == "risk:subject:queried"


@pytest.fixture
async def async_sdk(
    app: FastAPI, credential: Credential
) -> AsyncIterator[Callable[..., AsyncLedgerClient]]:
    made: list[AsyncLedgerClient] = []

    def make(**kw: Any) -> AsyncLedgerClient:
        client = AsyncLedgerClient(
            "http://testserver",
            credential.client_id,
            credential.secret,
            retry=FAST,
            deadline=30.0,
            transport=httpx.ASGITransport(app=app),
            **kw,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


async def test_the_async_client_does_the_same(
    async_sdk: Callable[..., AsyncLedgerClient], clock: FrozenClock
) -> None:
    ledger = async_sdk()
    subjects = await ledger.pseudonymize_many(
        [("phone", "13800138000"), ("prc_id", "11010519491231002x")]
    )
    assert subjects[0] == await ledger.pseudonymize("phone", "+8613800138000")
    await ledger.report(**payload(clock, subject=subjects[1]))
    items = await ledger.query_risk_batch(
        [
            {"subject": s, "purpose": "refund_review", "reference": f"r-{i}"}
            for i, s in enumerate(subjects)
        ]
    )
    assert [i.answer.counts.active_reports for i in items if i.answer] == [0, 1]


async def test_async_callers_share_one_token(
    async_sdk: Callable[..., AsyncLedgerClient], runtime: Runtime
) -> None:
    ledger = async_sdk()
    subject = await ledger.pseudonymize("email", "g@example.com")
    before = await _count(runtime, "oauth:token:issued")
    await asyncio.gather(*(ledger.query_risk(subject, reference=f"r-{n}") for n in range(5)))
    assert await _count(runtime, "oauth:token:issued") == before


async def _count(runtime: Runtime, tag: str) -> int:
    async with runtime.read_sessionmaker() as read:
        return (
            await read.execute(
                sa.select(sa.func.count())
                .select_from(AuditEventRow)
                .where(AuditEventRow.tag == tag)
            )
        ).scalar_one()


def test_an_unreachable_ledger_fails_after_the_retries() -> None:
    port = free_port()  # nothing listens there
    with (
        LedgerClient(f"http://127.0.0.1:{port}", "cl_x", "s", retry=FAST) as ledger,
        pytest.raises(TransportError) as caught,
    ):
        ledger.pseudonymize("email", "h@example.com")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert caught.value.sent is False


async def test_the_refund_gate_example_runs_end_to_end(
    live: tuple[str, FastAPI],
    credential: Credential,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from examples import refund_gate  # noqa: PLC0415

    monkeypatch.setenv("LEDGER_URL", live[0])
    monkeypatch.setenv("LEDGER_CLIENT_ID", credential.client_id)
    monkeypatch.setenv("LEDGER_CLIENT_SECRET", credential.secret)
    assert await asyncio.to_thread(refund_gate.main) == 0
    out = capsys.readouterr().out
    # The first claim's photo is the platform's own listing photo with a crack drawn on
    # it: found, so it goes to a person; the second has no photo and no record.
    assert "rf-" in out
    assert out.count("-> manual review") >= 1
    assert out.count("-> refund now") == 1
    assert "bits from our listing sku-" in out
    assert "confirmed case filed as report" in out
    assert "(same buyer): score 0" not in out  # the filed case now counts


async def test_a_dispute_from_the_buyers_platform_to_the_reporting_member(
    live: tuple[str, FastAPI],
    credential: Credential,
    session: AsyncSession,
    runtime: Runtime,
    clock: FrozenClock,
) -> None:
    buyers_platform = await make_credential(session, runtime)
    with sdk(live, credential) as reporter, sdk(live, buyers_platform) as other:
        subject = reporter.pseudonymize("phone", "13600136000")
        filed = reporter.report(**payload(clock, subject=subject))
        assert reporter.list_reports(subject=subject).reports[0].id == filed.id
        # The buyer complains to another platform, which opens the dispute for them.
        assert other.pseudonymize("phone", "136 0013 6000") == subject
        other.dispute(subject, [filed.id], reference="ticket-77")
        (item,) = reporter.disputes_assigned(status="open").items
        answered = reporter.resolve_dispute(
            item.dispute_id, filed.id, outcome="withdrawn", reason_code="cannot_substantiate"
        )
        assert answered.resolution == "withdrawn"
        assert other.query_risk(subject, reference="r-9").score == 0
        (opened,) = other.disputes_opened().disputes
        assert [i.resolution for i in opened.items] == ["withdrawn"]


async def test_the_sdk_remembers_checkpoints_and_refuses_a_log_that_shrank_or_forked(
    live: tuple[str, FastAPI], credential: Credential, database_url: str, tmp_path: Path
) -> None:
    runtime: Runtime = live[1].state.runtime
    settings = runtime.settings

    async def checkpoint() -> int:
        # Signed by the command, with its own loop and connections: the server's runtime
        # belongs to the server's thread.
        env = {"LEDGER_DATA_DIR": str(settings.data_dir), "LEDGER_DATABASE_URL": database_url}
        result = await asyncio.to_thread(CliRunner(env=env).invoke, main, ["audit", "checkpoint"])
        assert result.exit_code == 0, result.output
        size: int = json.loads(result.stdout)["tree_size"]
        return size

    store = tmp_path / "checkpoints.json"
    keys = await asyncio.to_thread(httpx.get, f"{live[0]}/v1/audit/keys")
    key = keys.json()["keys"][0]["verifier_key"]
    with sdk(live, credential, checkpoint_store=store) as ledger:
        subject = ledger.pseudonymize("email", "g@example.com")
        first = ledger.query_risk(subject, reference="r-5")
        small = await checkpoint()
        assert ledger.latest_checkpoint(key).tree_size == small
        ledger.query_risk(subject, reference="r-6")
        large = await checkpoint()
        # An old receipt (first checkpoint) and a newer checkpoint: proved consistent.
        ledger.audit_receipt(first.audit_event_id, key)
        assert ledger.latest_checkpoint(key).tree_size == large
    remembered = json.loads(store.read_text())
    assert remembered[settings.audit_origin]["size"] == large
    assert oct(store.stat().st_mode & 0o777) == "0o600"

    # The operator deletes the newest checkpoint and the tail after the first one.
    await tamper(
        database_url,
        [
            f"DELETE FROM audit_checkpoints WHERE tree_size > {small}",
            f"DELETE FROM audit_nodes WHERE (idx + 1) * (1 << level) > {small}",
            f"DELETE FROM audit_leaves WHERE leaf_index >= {small}",
        ],
    )
    with (
        sdk(live, credential, checkpoint_store=store) as ledger,
        pytest.raises(InvalidReceipt, match="shrunk"),
    ):
        ledger.latest_checkpoint(key)
    # A remembered tree of the same size with another root: the log forked.
    remembered[settings.audit_origin].update(size=small, root=base64.b64encode(bytes(32)).decode())
    store.write_text(json.dumps(remembered))
    with (
        sdk(live, credential, checkpoint_store=store) as ledger,
        pytest.raises(InvalidReceipt, match="forked"),
    ):
        ledger.latest_checkpoint(key)


async def test_a_buyer_whose_identity_was_misused_is_marked_and_disputes_once(
    live: tuple[str, FastAPI],
    credential: Credential,
    session: AsyncSession,
    runtime: Runtime,
    clock: FrozenClock,
) -> None:
    buyers_platform = await make_credential(session, runtime)
    with sdk(live, credential) as reporter, sdk(live, buyers_platform) as other:
        subject = reporter.pseudonymize("phone", "13500135000")
        filed = reporter.report(**payload(clock, subject=subject))
        # The buyer says someone else used their number: a marker, then one dispute
        # naming the buyer alone, routed to the reporting member.
        marker = other.place_marker(subject, reference="ticket-31")
        assert (marker.kind, marker.in_force) == ("identity_misused", True)
        answer = other.query_risk(subject, reference="refund-31")
        assert answer.protective_marker is not None
        assert answer.needs_review
        dispute = other.dispute(subject, reference="ticket-32")
        assert [i.report_id for i in dispute.items] == [filed.id]
        file = other.disclose(subject, reference="ask-33")
        assert [m.id for m in file.markers] == [marker.id]
        assert [d.id for d in file.disputes] == [dispute.id]
        removed = other.remove_marker(
            subject, marker.id, reference="ticket-34", at_buyers_request=True
        )
        assert not removed.in_force
        assert other.query_risk(subject, reference="refund-35").protective_marker is None
