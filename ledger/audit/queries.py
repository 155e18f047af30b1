"""Reading the audit log: filtered listing for auditors, and receipts with proofs.

Every function takes the principal. Auditors read everything; a member reads only the
events its own clients caused (another member's event is "not found").
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger import pagination
from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal, Principal, require
from ledger.audit import checkpoints, merkle
from ledger.audit.checkpoints import CheckpointView
from ledger.audit.models import AuditEventRow, AuditLeaf
from ledger.audit.sequencer import stored_event
from ledger.audit.tree import inclusion_proof
from ledger.errors import InvalidInput, NotFound, NotYet

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
        """The filter as recorded in the audit event of the read itself."""
        return {
            name: str(getattr(self, name))
            for name in self.__dataclass_fields__
            if getattr(self, name) is not None
        }

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
    principal: Principal,
    filt: EventFilter,
    *,
    cursor: str | None = None,
    limit: int = 100,
) -> Page:
    """Events matching ``filt``, newest first, ``limit`` at a time."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit is 1 to {MAX_PAGE}", fields=("limit",))
    query = _query(principal, filt)
    if cursor is not None:
        query = query.where(AuditEventRow.id < pagination.decode_int(cursor, "events"))
    result = await session.execute(query.order_by(AuditEventRow.id.desc()).limit(limit + 1))
    rows, next_cursor = pagination.cut(list(result), limit, "events", lambda r: (r[0].id,))
    return Page(events=[_view(row, leaf) for row, leaf in rows], next_cursor=next_cursor)


async def stream_events(
    session: AsyncSession, principal: Principal, filt: EventFilter
) -> AsyncIterator[EventView]:
    """Every matching event, oldest first, without holding them all in memory."""
    query = _query(principal, filt).order_by(AuditEventRow.id)
    result = await session.stream(query.execution_options(yield_per=1000))
    async for row, leaf in result:
        yield _view(row, leaf)


async def _event_for(session: AsyncSession, principal: Principal, event_id: int) -> AuditEventRow:
    row = await session.get(AuditEventRow, event_id)
    visible = row is not None and (
        Permission.AUDIT_READ in principal.permissions
        or (isinstance(principal, ClientPrincipal) and row.actor_member_id == principal.member_id)
    )
    if row is None or not visible:
        raise NotFound("no audit event with that id among those you may read")
    return row


async def event_view(session: AsyncSession, principal: Principal, event_id: int) -> EventView:
    """One event as it is hashed, and its leaf index (None until it is integrated)."""
    require(principal, Permission.AUDIT_READ)
    row = await _event_for(session, principal, event_id)
    leaf_index = await session.scalar(
        sa.select(AuditLeaf.leaf_index).where(AuditLeaf.event_id == event_id)
    )
    return _view(row, None if leaf_index is None else int(leaf_index))


async def receipt_for_event(
    session: AsyncSession, principal: Principal, event_id: int, *, tree_size: int | None = None
) -> Receipt:
    require(principal, Permission.AUDIT_PROOF_READ)
    row = await _event_for(session, principal, event_id)
    leaf_index = await session.scalar(
        sa.select(AuditLeaf.leaf_index).where(AuditLeaf.event_id == event_id)
    )
    if leaf_index is None:
        raise NotYet(
            "the event is not in the tree yet; a receipt is available within seconds",
            retry_after=1,
        )
    return await _receipt(session, row, int(leaf_index), tree_size)


async def receipt_for_leaf(
    session: AsyncSession, principal: Principal, leaf_index: int, *, tree_size: int | None = None
) -> Receipt:
    require(principal, Permission.AUDIT_PROOF_READ)
    event_id = await session.scalar(
        sa.select(AuditLeaf.event_id).where(AuditLeaf.leaf_index == leaf_index)
    )
    if event_id is None:
        raise NotFound("no leaf at that index")
    row = await _event_for(session, principal, int(event_id))
    return await _receipt(session, row, leaf_index, tree_size)


async def _receipt(
    session: AsyncSession, row: AuditEventRow, leaf_index: int, tree_size: int | None
) -> Receipt:
    if tree_size is None:
        checkpoint = await checkpoints.covering(session, leaf_index + 1)
        if checkpoint is None:
            raise NotYet(
                "the event is in the tree but no checkpoint covers it yet; checkpoints are "
                "signed every minute",
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
