"""What the live set lets a process hold of a subject's rows (ledger/scoring/live.py), and
for how long: the rules that keep a held answer the database's answer."""

from __future__ import annotations

import datetime as dt
import gc
import uuid
from array import array
from typing import cast

import pytest

from ledger.scoring.live import LiveSubjects, key_of
from ledger.scoring.service import HeldRows, rows_at

SUBJECT = "a" * 43
OTHER = "b" * 43
YEAR = dt.timedelta(days=365)


def _live(capacity: int = 10) -> LiveSubjects:
    live = LiveSubjects(held_capacity=capacity)
    keys = sorted([key_of(SUBJECT), key_of(OTHER)])
    live.load(array("q", keys), array("q", [2**40] * 2), since=0)
    live.enabled = True
    return live


def _read_and_hold(live: LiveSubjects, subject: str, rows: object) -> None:
    live.hold(subject, live.ticket(subject), rows)


def test_rows_read_are_held_until_the_subject_changes() -> None:
    live = _live()
    _read_and_hold(live, SUBJECT, "rows")
    _read_and_hold(live, OTHER, "other rows")
    assert live.held(SUBJECT) == "rows"
    live.touch([SUBJECT])  # a notification, or this process about to commit a change
    assert live.held(SUBJECT) is None
    assert live.held(OTHER) == "other rows"


def test_a_read_in_flight_when_its_subject_changes_is_not_held() -> None:
    live = _live()
    ticket = live.ticket(SUBJECT)  # the read begins …
    live.touch([SUBJECT])  # … the subject changes …
    live.settle([SUBJECT], {SUBJECT: 2**40}, since=live.counter)  # … and is read again
    live.hold(SUBJECT, ticket, "rows from before the change")  # … the first read returns
    assert live.held(SUBJECT) is None


def test_a_subject_changed_and_not_read_since_its_notification_is_not_held() -> None:
    live = _live()
    live.touch([SUBJECT])  # e.g. this process files, and the commit is not notified yet
    assert live.ticket(SUBJECT) is None
    _read_and_hold(live, SUBJECT, "rows")
    assert live.held(SUBJECT) is None
    live.settle([SUBJECT], {SUBJECT: 2**40}, since=live.counter)
    _read_and_hold(live, SUBJECT, "rows")
    assert live.held(SUBJECT) == "rows"


def test_a_change_to_a_subject_sharing_its_key_drops_what_was_held() -> None:
    live = _live()
    _read_and_hold(live, SUBJECT, "rows")
    live._set(key_of(SUBJECT), float("inf"))  # as a colliding subject's notification does
    assert live.held(SUBJECT) is None


@pytest.mark.parametrize("forget", ["a change naming no one", "a load", "the set off"])
def test_a_change_naming_no_one_a_load_or_the_set_off_forget_everything(forget: str) -> None:
    live = _live()
    _read_and_hold(live, SUBJECT, "rows")
    ticket = live.ticket(OTHER)  # a read in flight
    if forget == "a change naming no one":
        live.forget_held()
    elif forget == "a load":
        live.load(array("q", [key_of(SUBJECT)]), array("q", [2**40]), live.counter)
    else:
        live.disable()
    live.enabled = True
    assert live.held(SUBJECT) is None
    live.hold(OTHER, ticket, "rows read before")
    assert live.held(OTHER) is None
    assert live.held_count == 0


def test_nothing_is_held_while_the_set_is_off_or_holding_is_off() -> None:
    live = _live()
    live.enabled = False
    _read_and_hold(live, SUBJECT, "rows")
    assert live.held(SUBJECT) is None
    live = _live(capacity=0)
    _read_and_hold(live, SUBJECT, "rows")
    assert live.held(SUBJECT) is None


def test_at_most_capacity_subjects_are_held_the_least_recently_asked_leave_first() -> None:
    live = _live(capacity=3)
    subjects = [f"{n:043d}" for n in range(4)]
    for subject in subjects[:3]:
        _read_and_hold(live, subject, subject)
    assert live.held(subjects[0]) == subjects[0]  # asked again: now the most recent
    _read_and_hold(live, subjects[3], subjects[3])
    assert live.held_count == 3
    assert live.held(subjects[1]) is None
    assert [live.held(s) for s in (subjects[0], subjects[2], subjects[3])] == [
        subjects[0],
        subjects[2],
        subjects[3],
    ]


def test_held_rows_leave_the_garbage_collectors_sight() -> None:
    """Tens of thousands of held subjects must not be walked by every full collection:
    once collections have seen them (one level of nesting each), none of their parts is
    tracked, and the entry holding them neither."""
    now = dt.datetime.now(dt.UTC)
    member = uuid.uuid4()
    rows: HeldRows = (
        (member.int, "forged_evidence", "active", now, now, now + YEAR, now, now + YEAR),
        (member.int, "empty_box", "active", now, None, now + YEAR, now),
        ("identity_misused", now, now + YEAR),
    )
    live = _live()
    _read_and_hold(live, SUBJECT, rows)
    del rows
    for _ in range(3):  # the entry, the rows, a part: three levels
        gc.collect()
    held = cast(HeldRows, live.held(SUBJECT))
    assert not any(gc.is_tracked(part) for part in (live._held[SUBJECT], held, *held))
    at = rows_at(held, now)  # and what a query gets from them is the rows it always got
    assert [r.member_id for r in at.reports] == [member, member]
    assert [r.open_dispute_deadlines for r in at.reports] == [(now + YEAR,), ()]
    assert at.marker is not None
    assert at.marker.kind == "identity_misused"
