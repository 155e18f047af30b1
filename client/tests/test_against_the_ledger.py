"""Typed results and typed errors, from the installed package against a live ledger."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import importlib.metadata
import os
import uuid
from typing import Any

import pytest
import refund_ledger_client as sdk
from conftest import Ledger
from refund_ledger_client import (
    AsyncLedgerClient,
    AuthenticationError,
    Conflict,
    FieldError,
    LedgerClient,
    NotFound,
    PermissionDenied,
    Report,
    RiskAnswer,
    ValidationError,
)


def client(ledger: Ledger, **kw: Any) -> LedgerClient:
    # Generous: the machine running the suite is shared (test_deadlines.py checks the
    # deadline itself).
    kw.setdefault("deadline", 30.0)
    return LedgerClient(ledger.url, ledger.client_id, ledger.secret, **kw)


def a_report(subject: str, **overrides: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {
        "case_ref": f"case-{os.urandom(4).hex()}",
        "subject": subject,
        "category": "forged_evidence",
        "basis": "platform_review",
        "amount_minor": 12900,
        "currency": "CNY",
        "occurred_at": (now - dt.timedelta(days=10)).isoformat(),
        "confirmed_at": (now - dt.timedelta(days=2)).isoformat(),
        "evidence_sha256": [hashlib.sha256(os.urandom(8)).hexdigest()],
        "subject_notified_at": (now - dt.timedelta(days=1)).isoformat(),
    } | overrides


def test_only_the_client_is_installed() -> None:
    installed = {d.metadata["Name"].lower() for d in importlib.metadata.distributions()}
    assert "refund-ledger-client" in installed
    assert not installed & {"refund-ledger", "fastapi", "sqlalchemy", "uvicorn", "pdqhash"}
    with pytest.raises(ImportError):
        importlib.import_module("ledger")
    # Photos need the extra, and the error says which.
    with pytest.raises(ImportError, match=r"refund-ledger-client\[photos\]"):
        sdk.fingerprint  # noqa: B018 - the attribute's lookup is what is tested


def test_a_risk_answer_and_a_report_are_typed(ledger: Ledger) -> None:
    with client(ledger) as c:
        c.warm_up()
        subject = c.pseudonymize("phone", f"138{int.from_bytes(os.urandom(4)) % 10**8:08d}")
        clean = c.query_risk(subject, reference="refund-1")
        assert isinstance(clean, RiskAnswer)
        assert (clean.score, clean.band, clean.recommendation) == (0, "none", "proceed")
        assert clean.counts.last_report_at is None
        assert not clean.needs_review
        filed = c.report(**a_report(subject))
        assert isinstance(filed, Report)
        assert isinstance(filed.filed_at, dt.datetime)
        assert filed.filed_at.tzinfo is not None
        assert uuid.UUID(filed.id)
        answer = c.query_risk(subject, reference="refund-2")
        assert answer.counts.active_reports == 1
        assert isinstance(answer.counts.last_report_at, dt.datetime)
        assert answer.reasons
        assert answer.reasons[0].code.startswith("R")
        assert answer.explanation.summary
        page = c.list_reports(subject=subject)
        assert [r.id for r in page.reports] == [filed.id]
        file = c.disclose(subject, reference="access-1")
        assert [r.report.id for r in file.reports] == [filed.id]
        assert file.how_to_dispute
        withdrawn = c.withdraw(filed.id, "confirmed_in_error")
        assert withdrawn.status == "withdrawn"
        with pytest.raises(Conflict) as caught:
            c.withdraw(filed.id, "confirmed_in_error")
        assert caught.value.current_state == "withdrawn"
        assert caught.value.request_id


def test_a_wrong_secret_says_so_with_the_oauth_error(ledger: Ledger) -> None:
    with (
        LedgerClient(ledger.url, ledger.client_id, "wrong", deadline=30.0) as c,
        pytest.raises(AuthenticationError) as caught,
    ):
        c.query_risk("A" * 43, reference="refund-3")
    assert caught.value.status == 401
    assert caught.value.error == "invalid_client"
    assert caught.value.error_description
    assert "invalid_client" in str(caught.value)


def test_a_missing_scope_is_named(ledger: Ledger) -> None:
    with LedgerClient(ledger.url, ledger.narrow_id, ledger.narrow_secret, deadline=30.0) as c:
        with pytest.raises(PermissionDenied) as caught:
            c.report(**a_report("A" * 43))
        assert caught.value.required_scope == "reports:write"
    with (
        LedgerClient(
            ledger.url, ledger.narrow_id, ledger.narrow_secret, scope="reports:write"
        ) as asking,
        pytest.raises(AuthenticationError) as asked,  # a scope it was never given
    ):
        asking.warm_up()
    assert asked.value.error == "invalid_scope"


def test_not_found_and_validation_errors_are_typed(ledger: Ledger) -> None:
    with client(ledger) as c:
        with pytest.raises(NotFound) as missing:
            c.get_report(str(uuid.uuid4()))
        assert missing.value.type == "/problems/not-found"
        with pytest.raises(ValidationError) as invalid:
            c.query_risk("not-a-pseudonym", reference="refund-4")
        assert [f.field for f in invalid.value.fields] == ["subject"]
        assert isinstance(invalid.value.fields[0], FieldError)
        assert invalid.value.fields[0].detail
        # Nothing raw: the message names the problem and the request.
        assert "/problems/validation" in str(invalid.value)


async def test_the_async_client_gives_the_same_types(ledger: Ledger) -> None:
    async with AsyncLedgerClient(ledger.url, ledger.client_id, ledger.secret, deadline=30.0) as c:
        subject = await c.pseudonymize("email", "buyer@example.com")
        answer = await c.query_risk(subject, reference="refund-5")
        assert isinstance(answer, RiskAnswer)
        with pytest.raises(NotFound):
            await c.get_report(str(uuid.uuid4()))
