"""Safe inside a refund pipeline: a deadline per call, retries only within it and only
where safe, a gate whose fallback the integrator chose, hooks that name no buyer.

No test here measures time against a threshold: a deadline that did not work shows as
the wrong error (the per-wait ``timeout`` is set far beyond the deadline, so without a
working deadline the call would end in a ``TransportError`` after a minute)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from conftest import Ledger, Scripted
from refund_ledger_client import (
    AsyncLedgerClient,
    AsyncRefundGate,
    AttemptEvent,
    AuthenticationError,
    CallEvent,
    DeadlineExceeded,
    LedgerClient,
    NotFound,
    RefundGate,
    RetryPolicy,
    TransportError,
    Unavailable,
    UnexpectedAnswer,
)
from refund_ledger_client.hooks import path_template

MINUTE = 60.0
ANSWER = {
    "subject": "A" * 43,
    "score": 0,
    "band": "none",
    "recommendation": "proceed",
    "reasons": [],
    "counts": {
        "active_reports": 0,
        "distinct_members": 0,
        "last_90_days": 0,
        "last_365_days": 0,
        "open_disputes": 0,
        "last_report_at": None,
    },
    "policy_version": "test",
    "explanation": {"summary": "-", "decision": "-", "your_rights": "-"},
    "audit_event_id": 1,
    "a_field_added_later": True,
}


@dataclass
class Recorder:
    attempts: list[AttemptEvent] = field(default_factory=list)
    calls: list[CallEvent] = field(default_factory=list)

    def attempt_finished(self, attempt: AttemptEvent) -> None:
        self.attempts.append(attempt)

    def call_finished(self, call: CallEvent) -> None:
        self.calls.append(call)


def test_a_hanging_ledger_ends_at_the_deadline(black_hole: str) -> None:
    recorder = Recorder()
    with (
        LedgerClient(black_hole, "cl_x", "s", deadline=0.3, timeout=MINUTE, observer=recorder) as c,
        pytest.raises(DeadlineExceeded) as caught,
    ):
        c.query_risk("A" * 43, reference="refund-1")
    assert caught.value.operation == "query_risk"
    assert caught.value.deadline == 0.3
    assert [(e.operation, e.outcome) for e in recorder.calls] == [
        ("query_risk", "DeadlineExceeded")
    ]


async def test_the_async_client_ends_at_the_deadline_too(black_hole: str) -> None:
    async with AsyncLedgerClient(black_hole, "cl_x", "s", deadline=0.3, timeout=MINUTE) as c:
        with pytest.raises(DeadlineExceeded):
            await c.query_risk("A" * 43, reference="refund-1")


def test_a_call_may_take_its_own_deadline(black_hole: str) -> None:
    with (
        LedgerClient(black_hole, "cl_x", "s", timeout=MINUTE) as c,
        pytest.raises(DeadlineExceeded) as caught,
    ):
        c.get_report("0196", deadline=0.2)  # not a refund decision: 30 s unless told
    assert caught.value.deadline == 0.2
    with pytest.raises(ValueError, match="above 0"):
        LedgerClient(black_hole, "cl_x", "s", deadline=0)


def test_a_ledger_that_is_down_is_a_transport_error(closed_port: str) -> None:
    fast = RetryPolicy(attempts=3, base=0.01)
    with (
        LedgerClient(closed_port, "cl_x", "s", retry=fast) as c,
        pytest.raises(TransportError) as caught,
    ):
        c.pseudonymize("phone", "13800138000")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert caught.value.sent is False


def test_503_is_retried_after_retry_after_within_the_deadline(
    scripted: tuple[Scripted, str],
) -> None:
    server, url = scripted
    busy = (503, {"retry-after": "0"}, b'{"type": "/problems/unavailable"}')
    server.script = [busy, busy, (200, {}, json.dumps(ANSWER).encode())]
    recorder = Recorder()
    with LedgerClient(url, "cl_x", "s", deadline=30.0, observer=recorder) as c:
        answer = c.query_risk("A" * 43, reference="refund-2")
    assert answer.score == 0  # and the field it does not know is ignored
    assert server.seen == ["/v1/risk/query"] * 3
    retried = [a for a in recorder.attempts if a.path == "/v1/risk/query"]
    assert [(a.status, a.retry_in is not None) for a in retried] == [
        (503, True),
        (503, True),
        (200, False),
    ]
    assert recorder.calls[-1].attempts == 4  # the token, then three tries


def test_a_retry_after_past_the_deadline_is_not_waited_for(
    scripted: tuple[Scripted, str],
) -> None:
    server, url = scripted
    server.script = [(503, {"retry-after": "20"}, b'{"type": "/problems/unavailable"}')]
    with (
        LedgerClient(url, "cl_x", "s", deadline=2.0) as c,
        pytest.raises(Unavailable) as caught,
    ):
        c.query_risk("A" * 43, reference="refund-3")
    assert caught.value.retry_after == 20
    assert server.seen == ["/v1/risk/query"]  # once: a wait of 20 s cannot fit in 2 s


def test_a_page_that_is_not_the_ledgers_is_refused(scripted: tuple[Scripted, str]) -> None:
    server, url = scripted
    server.script = [(200, {"content-type": "text/html"}, b"<html>a proxy's page</html>")]
    with LedgerClient(url, "cl_x", "s", deadline=30.0) as c, pytest.raises(UnexpectedAnswer):
        c.query_risk("A" * 43, reference="refund-9")


def test_a_write_that_may_have_arrived_is_not_sent_twice(hang_up: tuple[list[int], str]) -> None:
    count, url = hang_up
    fast = RetryPolicy(attempts=3, base=0.01)
    with LedgerClient(url, "cl_x", "s", deadline=30.0, retry=fast) as c:
        c._engine.token.accept({"access_token": "t", "expires_in": 300})
        with pytest.raises(TransportError) as lost:
            c.dispute("A" * 43, ["r"], reference="ticket-1")  # opening twice opens two
        assert lost.value.sent is True
        assert count[0] == 1
        with pytest.raises(TransportError):
            c.get_report("r")  # a read: sent again, within the retry policy
        assert count[0] == 1 + 3


def test_hooks_name_no_buyer_and_no_id(ledger: Ledger) -> None:
    recorder = Recorder()
    with LedgerClient(
        ledger.url, ledger.client_id, ledger.secret, deadline=30.0, observer=recorder
    ) as c:
        subject = c.pseudonymize("phone", "13700137000")
        c.query_risk(subject, reference="refund-4")
        with pytest.raises(NotFound):
            c.get_report("0196a7b2-0000-7000-8000-000000000000")
    said = repr(recorder.attempts) + repr(recorder.calls)
    assert subject not in said
    assert "0196a7b2" not in said
    assert "/v1/reports/{id}" in {a.path for a in recorder.attempts}
    assert [(c.operation, c.outcome) for c in recorder.calls] == [
        ("pseudonymize", "ok"),
        ("query_risk", "ok"),
        ("get_report", "NotFound"),
    ]


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/v1/audit/events/48214/receipt", "/v1/audit/events/{id}/receipt"),
        ("/v1/audit/events/7/receipt", "/v1/audit/events/{id}/receipt"),
        (
            "/v1/reports/0196a7b2-0000-7000-8000-000000000000/withdrawal",
            "/v1/reports/{id}/withdrawal",
        ),
        ("/v1/risk/queries", "/v1/risk/queries"),
        ("/v1/pseudonyms/key", "/v1/pseudonyms/key"),
    ],
)
def test_path_templates_keep_no_id(path: str, template: str) -> None:
    assert path_template(path) == template


def test_the_gate_answers_from_the_ledger(ledger: Ledger) -> None:
    with LedgerClient(ledger.url, ledger.client_id, ledger.secret, deadline=30.0) as c:
        gate = RefundGate(c, if_unavailable="fail_closed")
        decision = gate.decide(identifiers=[("phone", "13500135000")], reference="refund-5")
    assert decision.answered
    assert decision.action == "proceed"
    assert decision.risk[0].score == 0
    assert decision.explanations == ()


@pytest.mark.parametrize(
    ("mode", "action"), [("fail_open", "proceed"), ("fail_closed", "manual_review")]
)
def test_the_gate_falls_back_as_told_when_the_ledger_cannot_answer(
    black_hole: str, mode: Any, action: str
) -> None:
    with LedgerClient(black_hole, "cl_x", "s", deadline=0.3, timeout=MINUTE) as c:
        decision = RefundGate(c, if_unavailable=mode).decide(
            identifiers=[("phone", "13500135000")], reference="refund-6"
        )
    assert (decision.answered, decision.action) == (False, action)
    assert isinstance(decision.error, DeadlineExceeded)


async def test_the_async_gate_falls_back_too(closed_port: str) -> None:
    async with AsyncLedgerClient(closed_port, "cl_x", "s", retry=RetryPolicy(attempts=1)) as c:
        decision = await AsyncRefundGate(c, if_unavailable="fail_open").decide(
            identifiers=[("email", "a@example.com")], reference="refund-7"
        )
    assert (decision.answered, decision.action) == (False, "proceed")
    assert isinstance(decision.error, TransportError)


def test_the_gate_does_not_hide_a_wrong_secret(ledger: Ledger) -> None:
    with LedgerClient(ledger.url, ledger.client_id, "wrong", deadline=30.0) as c:
        gate = RefundGate(c, if_unavailable="fail_open")
        with pytest.raises(AuthenticationError):
            gate.decide(identifiers=[("phone", "13500135000")], reference="refund-8")


def test_the_gate_has_no_default_fallback(ledger: Ledger) -> None:
    with LedgerClient(ledger.url, ledger.client_id, ledger.secret) as c:
        with pytest.raises(TypeError):
            RefundGate(c)  # type: ignore[call-arg]
        with pytest.raises(ValueError, match="fail_open"):
            RefundGate(c, if_unavailable="open")  # type: ignore[arg-type]
