"""The sequencer's spliced canonical form is byte-equal to the reference form."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.audit.events import (
    Actor,
    AuditEvent,
    CanonicalBody,
    StoredEvent,
    shared_body,
    spliced_bytes,
)
from ledger.audit.tags import ActorType, Outcome, Tag
from ledger.errors import InvalidInput

# Any text, including quotes, backslashes, control characters, non-BMP characters and
# lone surrogates: what JSON escapes and what it does not.
_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
_MAYBE_TEXT = st.none() | _TEXT
_SCALAR = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | _TEXT
_BODY = st.recursive(
    _SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)
# Every year, in UTC and at +08:00 (a time is written in UTC whatever its zone).
_TIME = st.datetimes(timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=8))]))


def _stored(event_id: int, at: dt.datetime, event: AuditEvent) -> StoredEvent:
    return StoredEvent(
        id=event_id,
        recorded_at=at,
        tag=event.tag.value,
        actor_type=event.actor.type.value,
        actor_member_id=event.actor.member_id,
        actor_client_id=event.actor.client_id,
        actor_user_id=event.actor.user_id,
        subject=event.subject,
        purpose=event.purpose,
        reference=event.reference,
        request_id=event.request_id,
        outcome=event.outcome.value,
        body=event.body_json(),
    )


def _fields(stored: StoredEvent) -> tuple[object, ...]:
    return tuple(getattr(stored, name) for name in StoredEvent.__dataclass_fields__)


@settings(max_examples=300, deadline=None)
@given(
    event_id=st.integers(1, 2**63 - 1),
    at=_TIME,
    tag=st.sampled_from(list(Tag)),
    actor_type=st.sampled_from(list(ActorType)),
    member=st.none() | st.uuids(),
    client=_MAYBE_TEXT,
    user=st.none() | st.uuids(),
    subject=_MAYBE_TEXT,
    purpose=_MAYBE_TEXT,
    reference=_MAYBE_TEXT,
    request_id=_MAYBE_TEXT,
    outcome=st.sampled_from(list(Outcome)),
    body=st.dictionaries(_TEXT, _BODY, max_size=5),
)
def test_spliced_bytes_equal_the_reference_form(
    event_id: int,
    at: dt.datetime,
    tag: Tag,
    actor_type: ActorType,
    member: uuid.UUID | None,
    client: str | None,
    user: uuid.UUID | None,
    subject: str | None,
    purpose: str | None,
    reference: str | None,
    request_id: str | None,
    outcome: Outcome,
    body: dict[str, object],
) -> None:
    actor = Actor(actor_type, member_id=member, client_id=client, user_id=user)
    event = AuditEvent(
        tag,
        actor,
        outcome=outcome,
        subject=subject,
        purpose=purpose,
        reference=reference,
        request_id=request_id,
        body=body,  # type: ignore[arg-type]
    )
    stored = _stored(event_id, at, event)
    assert spliced_bytes(_fields(stored)) == stored.canonical_bytes()


def test_a_risk_query_event_splices_to_its_documented_bytes() -> None:
    member = uuid.UUID("0b5e8d1c-7f3a-4c2e-9a6b-1d2e3f405162")
    event = AuditEvent(
        Tag.RISK_QUERIED,
        Actor.client(member, "cli_checkout"),
        subject='ps_é"x',
        purpose="refund_decision",
        request_id="req-1",
        body={"score": 12, "band": "low", "policy_version": "2026-11"},
    )
    at = dt.datetime(2026, 12, 4, 8, 30, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    stored = _stored(42, at, event)
    expected = (
        '{"actor":{"client_id":"cli_checkout","member_id":"0b5e8d1c-7f3a-4c2e-9a6b-1d2e3f405162",'
        '"type":"client","user_id":null},"body":{"band":"low","policy_version":"2026-11",'
        '"score":12},"id":42,"outcome":"success","purpose":"refund_decision","reference":null,'
        '"request_id":"req-1","subject":"ps_\\u00e9\\"x","tag":"risk:subject:queried",'
        '"time":"2026-12-04T00:30:00.000005Z","v":1}'
    ).encode("ascii")
    assert spliced_bytes(_fields(stored)) == expected == stored.canonical_bytes()
    assert json.loads(expected)["subject"] == 'ps_é"x'


def test_a_shared_body_is_the_body_written_once() -> None:
    actor = Actor.client(uuid.uuid4(), "cli_checkout")
    items = (("score", 7), ("band", "low"), ("policy_version", "2026-11-23.1"))
    shared = shared_body(*items)
    assert shared_body(*items) is shared
    plain = AuditEvent(Tag.RISK_QUERIED, actor, body=dict(items))
    event = AuditEvent(Tag.RISK_QUERIED, actor, body=shared)
    assert event.body_json() == plain.body_json() == shared.text
    assert dict(shared) == dict(items)
    with pytest.raises(InvalidInput):
        CanonicalBody({"score": 0.5})  # type: ignore[dict-item]
    with pytest.raises(InvalidInput):
        CanonicalBody({"text": "x" * 5000})
