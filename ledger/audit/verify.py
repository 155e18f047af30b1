"""Recompute the audit tree from the database and check it against what was signed.

Read-only. For every leaf, in order: the event it names must exist, and its canonical
bytes must hash to the leaf hash stored when it was integrated. The tree is rebuilt
from the *events* (not the stored hashes) and every signed checkpoint must match it:
signature, tree size and root. Consecutive checkpoints must be consistent through the
stored nodes that the proof API serves. Events older than the grace period that never
became leaves are reported too.

The first problem found, in leaf order, is named with what is wrong with it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm
from refund_ledger_client import merkle
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.keys import KeyRing
from ledger.audit import notes
from ledger.audit.events import AuditEvent, StoredEvent
from ledger.audit.models import (
    EVENT_COLUMNS,
    AuditCheckpoint,
    AuditEventRow,
    AuditLeaf,
    AuditNode,
)
from ledger.audit.tags import Outcome, Tag
from ledger.audit.tree import consistency_proof
from ledger.context import Operation


@dataclass(frozen=True, slots=True)
class Problem:
    what: str
    event_id: int | None = None
    leaf_index: int | None = None
    tree_size: int | None = None


PROGRESS_EVERY = 1000  # leaves between two progress calls

# Takes a problem; answers whether to stop looking.
ProblemSink = Callable[[Problem], bool]


@dataclass
class Report:
    leaves: int = 0
    events: int = 0
    checkpoints: int = 0
    pending: int = 0
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None


class _Frontier:
    """The right edge of a left-balanced tree: O(log n) hashes give the root."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, bytes]] = []
        self.size = 0

    def append(self, leaf: bytes) -> None:
        self.stack.append((1, leaf))
        self.size += 1
        while len(self.stack) >= 2 and self.stack[-1][0] == self.stack[-2][0]:
            (n, right), (_, left) = self.stack.pop(), self.stack.pop()
            self.stack.append((2 * n, merkle.node_hash(left, right)))

    def root(self) -> bytes:
        if not self.stack:
            return merkle.EMPTY_ROOT
        root = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            root = merkle.node_hash(left, root)
        return root


_PAIR = sa.orm.aliased(AuditNode)
_LEAVES = (
    sa.select(
        AuditLeaf.leaf_index,
        AuditLeaf.event_id,
        AuditNode.hash.label("stored_hash"),
        # At every odd leaf, the stored node over it and the leaf before it: an event
        # rewritten together with its leaf hash still disagrees with it.
        _PAIR.hash.label("pair_hash"),
        *EVENT_COLUMNS,
    )
    .outerjoin(AuditEventRow, AuditEventRow.id == AuditLeaf.event_id)
    .outerjoin(AuditNode, sa.and_(AuditNode.level == 0, AuditNode.idx == AuditLeaf.leaf_index))
    .outerjoin(
        _PAIR,
        sa.and_(
            _PAIR.level == 1,
            _PAIR.idx == AuditLeaf.leaf_index // 2,
            AuditLeaf.leaf_index % 2 == 1,
        ),
    )
    .order_by(AuditLeaf.leaf_index)
)

_COLUMNS_BEFORE_EVENT = 4


@dataclass(frozen=True, slots=True)
class Kept:
    """A checkpoint kept outside the ledger (by a witness, a member, an auditor)."""

    checkpoint: notes.Checkpoint
    source: str


def kept_checkpoints(text: str, *, ring: KeyRing, origin: str, source: str) -> list[Kept]:
    """Every checkpoint signed by the ledger found in ``text``: one note, or any JSON
    (an API answer, the SDK's memory, a witness's state) whose strings hold notes."""
    try:
        strings = list(_strings(json.loads(text)))
    except ValueError:
        strings = [text]
    found = []
    for candidate in strings:
        for key in ring.keys:
            try:
                body = notes.open_note(candidate, origin, key.public_key)
                found.append(Kept(notes.parse_checkpoint(body), source))
                break
            except notes.NoteError:
                continue
    return found


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


async def verify(
    session: AsyncSession,
    *,
    ring: KeyRing,
    origin: str,
    now: dt.datetime,
    grace: dt.timedelta = dt.timedelta(minutes=5),
    stop_after: int = 100,
    kept: Sequence[Kept] = (),
    progress: Callable[[int], Awaitable[None]] | None = None,
) -> Report:
    """Check the log; ``kept`` are checkpoints from outside the ledger, which name a
    deleted tail or a rewritten history that the database alone cannot show.
    ``progress`` hears how many leaves have been checked, every ``PROGRESS_EVERY``."""
    started = time.perf_counter()
    report = Report()
    checkpoints = list(
        await session.scalars(sa.select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size))
    )
    report.checkpoints = len(checkpoints)
    due = iter(checkpoints)
    next_checkpoint = next(due, None)
    frontier = _Frontier()

    def problem(p: Problem) -> bool:
        report.problems.append(p)
        return len(report.problems) >= stop_after

    while next_checkpoint is not None and next_checkpoint.tree_size == 0:
        _check_checkpoint(next_checkpoint, frontier.root(), ring, origin, problem)
        next_checkpoint = next(due, None)

    outside = sorted(
        (k for k in kept if k.checkpoint.tree_size > 0), key=lambda k: k.checkpoint.tree_size
    )
    previous: tuple[int, bytes] | None = None  # the last leaf's event id and stored hash
    result = await session.stream(_LEAVES.execution_options(yield_per=2000))
    async for row in result:
        index = int(row.leaf_index)
        if index != frontier.size:
            # The tree cannot be rebuilt past a hole in the leaves.
            problem(Problem(f"leaf {frontier.size} is missing", leaf_index=frontier.size))
            break
        leaf, found = _check_leaf(row, index, previous)
        stored = bytes(row.stored_hash) if row.stored_hash is not None else leaf
        previous = (int(row.event_id), stored)
        frontier.append(leaf)
        if progress is not None and frontier.size % PROGRESS_EVERY == 0:
            await progress(frontier.size)
        found += _check_kept(outside, frontier)
        if any(problem(p) for p in found):
            break
        while next_checkpoint is not None and next_checkpoint.tree_size == frontier.size:
            if _check_checkpoint(next_checkpoint, frontier.root(), ring, origin, problem):
                break
            next_checkpoint = next(due, None)
    report.leaves = frontier.size

    for held in outside:
        problem(_missing_tail(held, frontier.size))
    for checkpoint in [next_checkpoint, *due] if next_checkpoint is not None else []:
        what = f"checkpoint {checkpoint.tree_size} is larger than the tree ({frontier.size})"
        problem(Problem(what, tree_size=checkpoint.tree_size))

    await _check_consistency(session, checkpoints, problem)
    await _check_unintegrated(session, report, now - grace, problem)
    report.events = int(
        await session.scalar(sa.select(sa.func.count()).select_from(AuditEventRow)) or 0
    )
    report.seconds = time.perf_counter() - started
    return report


def _check_leaf(
    row: sa.Row[Any], index: int, previous: tuple[int, bytes] | None
) -> tuple[bytes, list[Problem]]:
    """The leaf's hash as rebuilt (the stored one if its event is gone), and what is
    wrong with it: a deleted event, a changed one, or one changed with its leaf hash."""
    found = []
    leaf = _leaf_hash(row)
    if leaf is None:
        what = f"event {row.event_id} (leaf {index}) is missing: it was deleted"
        found.append(Problem(what, event_id=row.event_id, leaf_index=index))
        leaf = bytes(row.stored_hash) if row.stored_hash is not None else bytes(32)
    elif row.stored_hash is None or bytes(row.stored_hash) != leaf:
        what = (
            f"event {row.event_id} (leaf {index}) does not match the hash recorded when "
            "it was integrated: its content was changed"
        )
        found.append(Problem(what, event_id=row.event_id, leaf_index=index))
    elif (
        # The stored hashes must still make the stored node over the pair (a rewritten
        # event whose leaf hash was rewritten too passes the check above, not this one).
        row.pair_hash is not None
        and previous is not None
        and merkle.node_hash(previous[1], leaf) != bytes(row.pair_hash)
    ):
        what = (
            f"event {previous[0]} or event {row.event_id} (leaves {index - 1} and {index}) "
            "was changed together with its stored leaf hash: the tree's node over the two "
            "no longer matches them"
        )
        found.append(Problem(what, event_id=row.event_id, leaf_index=index))
    return leaf, found


def _check_kept(outside: list[Kept], frontier: _Frontier) -> list[Problem]:
    """Kept checkpoints of the tree's present size must have its root."""
    found = []
    while outside and outside[0].checkpoint.tree_size == frontier.size:
        held = outside.pop(0)
        if held.checkpoint.root_hash != frontier.root():
            what = (
                f"the checkpoint of size {frontier.size} kept by {held.source} does not "
                "match the tree rebuilt from the events: the log was rewritten"
            )
            found.append(Problem(what, tree_size=frontier.size))
    return found


def _missing_tail(held: Kept, leaves: int) -> Problem:
    size, signed = held.checkpoint.tree_size, held.checkpoint.time
    what = (
        f"the log holds {leaves} leaves, but {held.source} keeps a checkpoint of size "
        f"{size} signed at {signed:%Y-%m-%d %H:%M:%S}Z: leaves {leaves} to {size - 1} are "
        "missing, and the tail of the log was deleted"
    )
    return Problem(what, tree_size=size)


def _leaf_hash(row: sa.Row[Any]) -> bytes | None:
    if row.id is None:  # the leaf's event is gone
        return None
    values: list[Any] = list(row)[_COLUMNS_BEFORE_EVENT:]
    return merkle.leaf_hash(StoredEvent(*values).canonical_bytes())


def _check_checkpoint(
    checkpoint: AuditCheckpoint,
    computed_root: bytes,
    ring: KeyRing,
    origin: str,
    problem: ProblemSink,
) -> bool:
    size = checkpoint.tree_size
    key = next((k for k in ring.keys if k.kid == checkpoint.key_id), None)
    if key is None:
        return problem(Problem(f"checkpoint {size} names an unknown key", tree_size=size))
    try:
        parsed = notes.parse_checkpoint(notes.open_note(checkpoint.note, origin, key.public_key))
    except notes.NoteError as exc:
        return problem(Problem(f"checkpoint {size}: {exc}", tree_size=size))
    if parsed.tree_size != size or parsed.root_hash != bytes(checkpoint.root_hash):
        what = f"checkpoint {size}: the stored size or root differs from the signed note"
        return problem(Problem(what, tree_size=size))
    if parsed.root_hash != computed_root:
        what = (
            f"checkpoint {size}: the signed root does not match the tree rebuilt from the "
            "events: an event in it was rewritten along with its stored hashes"
        )
        return problem(Problem(what, tree_size=size))
    return False


async def _check_consistency(
    session: AsyncSession, checkpoints: list[AuditCheckpoint], problem: ProblemSink
) -> None:
    previous = None
    for checkpoint in checkpoints:
        if previous is not None and previous.tree_size > 0:
            old, new = previous.tree_size, checkpoint.tree_size
            try:
                proof = await consistency_proof(session, old, new)
                merkle.verify_consistency(
                    old, new, bytes(previous.root_hash), bytes(checkpoint.root_hash), proof
                )
            except (merkle.ProofError, LookupError) as exc:
                what = f"checkpoints {old} and {new} are not consistent: {exc}"
                if problem(Problem(what, tree_size=new)):
                    return
        previous = checkpoint


async def _check_unintegrated(
    session: AsyncSession, report: Report, cutoff: dt.datetime, problem: ProblemSink
) -> None:
    waiting = (
        sa.select(AuditEventRow.id, AuditEventRow.recorded_at)
        .where(~sa.exists().where(AuditLeaf.event_id == AuditEventRow.id))
        .order_by(AuditEventRow.id)
    )
    for event_id, recorded_at in await session.execute(waiting):
        if recorded_at >= cutoff:
            report.pending += 1
            continue
        what = (
            f"event {event_id} was recorded at {recorded_at:%Y-%m-%d %H:%M:%S} and never integrated"
        )
        if problem(Problem(what, event_id=event_id)):
            return


def verified_event(op: Operation, report: Report) -> AuditEvent:
    """The audit event that records a check of the log, and what it found."""
    return op.event(
        Tag.AUDIT_VERIFIED,
        outcome=Outcome.SUCCESS if report.ok else Outcome.FAILED,
        body={"ok": report.ok, "leaves": report.leaves, "problems": len(report.problems)},
    )
