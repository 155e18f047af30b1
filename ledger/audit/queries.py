"""Reading the audit log: filtered listing for auditors, and receipts with proofs.

Every function takes the principal. Auditors read everything; a member reads only the
events its own clients caused (another member's event is "not found"). Reading the log
is itself recorded, by the functions here that take a ``Recorder``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from refund_ledger_client import merkle
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledger import pagination
from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal, Principal, require
from ledger.audit import checkpoints
from ledger.audit.checkpoints import CheckpointView
from ledger.audit.models import AuditEventRow, AuditLeaf
from ledger.audit.reads import Audited, Recorder
from ledger.audit.sequencer import stored_event
from ledger.audit.tags import Tag
from ledger.audit.tree import inclusion_proof
from ledger.errors import InvalidInput, NotFound, NotYet
from ledger.i18n import N_

MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class EventFilter:
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    member_id: uuid.UUID | None = None
    actor_type: str | None = None
    client_id: str | None = None
    user_id: uuid.UUID | None = None
    tag: str | None = None
    subject: str | None = None
    purpose: str | None = None
    outcome: str | None = None

    def summary(self) -> dict[str, str]:
        """The filter as recorded in the audit event of the read itself (the subject,
        when there is one, is the event's subject, not part of its body)."""
        return {
            name: str(getattr(self, name))
            for name in self.__dataclass_fields__
            if getattr(self, name) is not None and name != "subject"
        }

    async def record(self, rec: Recorder, tag: Tag, **more: str) -> int:
        return await rec.record(tag, subject=self.subject, body=self.summary() | more)

    def where(self) -> list[sa.ColumnElement[bool]]:
        e = AuditEventRow
        conditions: list[sa.ColumnElement[bool]] = []
        if self.since is not None:
            conditions.append(e.recorded_at >= self.since)
        if self.until is not None:
            conditions.append(e.recorded_at < self.until)
        for column, value in (
            (e.actor_member_id, self.member_id),
            (e.actor_type, self.actor_type),
            (e.actor_client_id, self.client_id),
            (e.actor_user_id, self.user_id),
            (e.tag, self.tag),
            (e.subject, self.subject),
            (e.purpose, self.purpose),
            (e.outcome, self.outcome),
        ):
            if value is not None:
                conditions.append(column == value)
        return conditions


@dataclass(frozen=True, slots=True)
class EventView:
    event: dict[str, Any]
    leaf_index: int | None


@dataclass(frozen=True, slots=True)
class Page:
    events: list[EventView]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Receipt:
    """An event, its leaf, and the proof that the leaf is in a signed checkpoint."""

    event: dict[str, Any]
    canonical: bytes
    leaf_index: int
    leaf_hash: bytes
    proof: list[bytes]
    checkpoint: CheckpointView


# How long a receipt waits for its checkpoint, at most: the service signs one a minute.
CHECKPOINT_RETRY_SECONDS = 60


def _query(principal: Principal, filt: EventFilter) -> sa.Select[AuditEventRow, int]:
    require(principal, Permission.AUDIT_READ)
    return (
        sa.select(AuditEventRow, AuditLeaf.leaf_index)
        .outerjoin(AuditLeaf, AuditLeaf.event_id == AuditEventRow.id)
        .where(*filt.where())
    )


def _view(row: AuditEventRow, leaf_index: int | None) -> EventView:
    return EventView(event=stored_event(row).canonical(), leaf_index=leaf_index)


async def list_events(
    session: AsyncSession,
    rec: Recorder,
    principal: Principal,
    filt: EventFilter,
    *,
    cursor: str | None = None,
    limit: int = 100,
    view: str | None = None,
) -> Audited[Page]:
    """Events matching ``filt``, newest first, ``limit`` at a time. Recorded."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit is 1 to {MAX_PAGE}", fields=("limit",))
    query = _query(principal, filt)
    if cursor is not None:
        query = query.where(AuditEventRow.id < pagination.decode_int(cursor, "events"))
    result = await session.execute(query.order_by(AuditEventRow.id.desc()).limit(limit + 1))
    rows, next_cursor = pagination.cut(list(result), limit, "events", lambda r: (r[0].id,))
    page = Page(events=[_view(row, leaf) for row, leaf in rows], next_cursor=next_cursor)
    more = {"view": view} if view else {}
    return Audited(page, await filt.record(rec, Tag.AUDIT_EVENTS_LISTED, **more))


async def export_events(
    snapshots: async_sessionmaker[AsyncSession],
    rec: Recorder,
    principal: Principal,
    filt: EventFilter,
    *,
    file_format: str,
) -> Audited[Callable[[], AsyncIterator[EventView]]]:
    """Every matching event, oldest first, read from one snapshot without holding them
    all in memory. The export is recorded before its first event is read; the stream
    starts when the returned function is called."""
    query = _query(principal, filt).order_by(AuditEventRow.id)
    event_id = await filt.record(rec, Tag.AUDIT_EVENTS_EXPORTED, format=file_format)

    async def stream() -> AsyncIterator[EventView]:
        async with snapshots() as session:
            result = await session.stream(query.execution_options(yield_per=1000))
            async for row, leaf in result:
                yield _view(row, leaf)

    return Audited(stream, event_id)


async def _event_for(session: AsyncSession, principal: Principal, event_id: int) -> AuditEventRow:
    row = await session.get(AuditEventRow, event_id)
    visible = row is not None and (
        Permission.AUDIT_READ in principal.permissions
        or (isinstance(principal, ClientPrincipal) and row.actor_member_id == principal.member_id)
    )
    if row is None or not visible:
        raise NotFound("no audit event with that id among those you may read")
    return row


@dataclass(frozen=True, slots=True)
class Inspected:
    """One event for an auditor: as hashed, with its receipt against the latest
    checkpoint, or why there is none yet."""

    event: EventView
    receipt: Receipt | None
    pending: str | None


async def inspect_event(
    session: AsyncSession, rec: Recorder, principal: Principal, event_id: int
) -> Audited[Inspected]:
    """One event, its leaf index (None until integrated) and its receipt. Recorded."""
    require(principal, Permission.AUDIT_READ)
    row = await _event_for(session, principal, event_id)
    leaf_index = await _leaf_of(session, event_id)
    latest = await checkpoints.latest(session)
    receipt: Receipt | None = None
    pending: str | None = N_("no checkpoint has been signed yet")
    if latest is not None:
        try:
            receipt = await _receipt_at(session, row, leaf_index, latest.tree_size)
        except (NotFound, NotYet, InvalidInput) as exc:
            pending = exc.message
        else:
            pending = None
    event_id_read = await rec.record(Tag.AUDIT_PROOF_READ, body={"event_id": str(event_id)})
    return Audited(Inspected(_view(row, leaf_index), receipt, pending), event_id_read)


async def _leaf_of(session: AsyncSession, event_id: int) -> int | None:
    leaf_index = await session.scalar(
        sa.select(AuditLeaf.leaf_index).where(AuditLeaf.event_id == event_id)
    )
    return None if leaf_index is None else int(leaf_index)


async def _receipt_at(
    session: AsyncSession, row: AuditEventRow, leaf_index: int | None, tree_size: int | None
) -> Receipt:
    if leaf_index is None:
        raise NotYet(
            N_("the event is not in the tree yet; a receipt is available within seconds"),
            retry_after=1,
        )
    return await _receipt(session, row, leaf_index, tree_size)


async def receipt_for_event(
    session: AsyncSession,
    rec: Recorder,
    principal: Principal,
    event_id: int,
    *,
    tree_size: int | None = None,
) -> Audited[Receipt]:
    """A receipt for an event (a member's own, or any for an auditor). Recorded."""
    require(principal, Permission.AUDIT_PROOF_READ)
    row = await _event_for(session, principal, event_id)
    receipt = await _receipt_at(session, row, await _leaf_of(session, event_id), tree_size)
    event_id_read = await rec.record(Tag.AUDIT_PROOF_READ, body={"event_id": str(event_id)})
    return Audited(receipt, event_id_read)


async def receipt_for_leaf(
    session: AsyncSession,
    rec: Recorder,
    principal: Principal,
    leaf_index: int,
    *,
    tree_size: int | None = None,
) -> Audited[Receipt]:
    """The event at a leaf, with its receipt (same rules). Recorded."""
    require(principal, Permission.AUDIT_PROOF_READ)
    event_id = await session.scalar(
        sa.select(AuditLeaf.event_id).where(AuditLeaf.leaf_index == leaf_index)
    )
    if event_id is None:
        raise NotFound("no leaf at that index")
    row = await _event_for(session, principal, int(event_id))
    receipt = await _receipt(session, row, leaf_index, tree_size)
    event_id_read = await rec.record(Tag.AUDIT_PROOF_READ, body={"leaf_index": str(leaf_index)})
    return Audited(receipt, event_id_read)


async def _receipt(
    session: AsyncSession, row: AuditEventRow, leaf_index: int, tree_size: int | None
) -> Receipt:
    if tree_size is None:
        checkpoint = await checkpoints.covering(session, leaf_index + 1)
        if checkpoint is None:
            raise NotYet(
                N_(
                    "the event is in the tree but no checkpoint covers it yet; checkpoints "
                    "are signed every minute"
                ),
                retry_after=CHECKPOINT_RETRY_SECONDS,
            )
    else:
        checkpoint = await checkpoints.at_size(session, tree_size)
        if checkpoint.tree_size <= leaf_index:
            raise InvalidInput(
                f"leaf {leaf_index} is not in the tree of size {tree_size}",
                fields=("tree_size",),
            )
    canonical = stored_event(row).canonical_bytes()
    return Receipt(
        event=stored_event(row).canonical(),
        canonical=canonical,
        leaf_index=leaf_index,
        leaf_hash=merkle.leaf_hash(canonical),
        proof=await inclusion_proof(session, leaf_index, checkpoint.tree_size),
        checkpoint=checkpoint,
    )
