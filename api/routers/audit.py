"""The audit log over HTTP: public keys, checkpoints and proofs for anyone holding a
token, receipts for a member's own events, and the full log for auditors.

Reading the audit log is itself audited, durably, before the answer is sent.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from refund_ledger_client import merkle

from api.auth import authorize, recorder
from api.deps import ReadSessionDep, RuntimeDep
from api.openapi import problems
from api.schemas import Cursor, EventId, LeafIndex, TreeSize, page_limit, tree_size_query
from api.schemas.audit import (
    CheckpointList,
    CheckpointOut,
    ConsistencyProofOut,
    EventOut,
    EventPage,
    ReceiptOut,
    VerifierKey,
    VerifierKeys,
)
from ledger.access.permissions import Permission
from ledger.access.principals import Principal
from ledger.audit import checkpoints, queries, tree
from ledger.audit.checkpoints import CheckpointView
from ledger.audit.queries import EventFilter, Receipt
from ledger.audit.tags import ActorType, Outcome, Tag
from ledger.db import create_snapshot_sessionmaker
from ledger.errors import InvalidInput, NotFound
from ledger.runtime import Runtime
from ledger.subjects.pseudonyms import PSEUDONYM_PATTERN

router = APIRouter(prefix="/v1/audit", tags=["audit"])

ProofReader = Annotated[Principal, Depends(authorize(Permission.AUDIT_PROOF_READ))]
Auditor = Annotated[Principal, Depends(authorize(Permission.AUDIT_READ))]

PSEUDONYM = PSEUDONYM_PATTERN


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _checkpoint(view: CheckpointView) -> CheckpointOut:
    return CheckpointOut(
        tree_size=view.tree_size,
        root_hash=_b64(view.root_hash),
        created_at=view.created_at,
        key_id=view.key_id,
        note=view.cosigned_note,
        cosignatures=list(view.cosignatures),
    )


@router.get("/keys", response_model=VerifierKeys)
async def verifier_keys(runtime: RuntimeDep) -> VerifierKeys:
    """The public keys that sign checkpoints, retired ones included (they verify old ones)."""
    ring = runtime.audit.keys.current()
    keys = checkpoints.verifier_keys(ring, runtime.audit.origin)
    return VerifierKeys(
        origin=runtime.audit.origin, keys=[VerifierKey.model_validate(k) for k in keys]
    )


@router.get("/checkpoints/latest", response_model=CheckpointOut, responses=problems(404))
async def latest_checkpoint(_: ProofReader, session: ReadSessionDep) -> CheckpointOut:
    """The newest signed checkpoint."""
    view = await checkpoints.latest(session)
    if view is None:
        raise NotFound("no checkpoint has been signed yet")
    return _checkpoint(view)


@router.get("/checkpoints", response_model=CheckpointList)
async def checkpoint_history(
    _: ProofReader,
    session: ReadSessionDep,
    cursor: Cursor = None,
    limit: Annotated[int, page_limit(500)] = 100,
) -> CheckpointList:
    """Signed checkpoints, newest first."""
    views, next_cursor = await checkpoints.history(session, cursor=cursor, limit=limit)
    return CheckpointList(checkpoints=[_checkpoint(v) for v in views], next_cursor=next_cursor)


@router.get("/checkpoints/{tree_size}", response_model=CheckpointOut, responses=problems(404))
async def checkpoint_at(
    tree_size: TreeSize, _: ProofReader, session: ReadSessionDep
) -> CheckpointOut:
    """The checkpoint signed at exactly this tree size."""
    return _checkpoint(await checkpoints.at_size(session, tree_size))


@router.get("/consistency", response_model=ConsistencyProofOut)
async def consistency(
    _: ProofReader,
    session: ReadSessionDep,
    old_size: Annotated[int, tree_size_query("the older tree's size")],
    new_size: Annotated[int, tree_size_query("the newer tree's size")],
) -> ConsistencyProofOut:
    """Proof that the tree of ``new_size`` extends the tree of ``old_size`` (RFC 9162)."""
    if old_size > new_size or new_size > await tree.tree_size(session):
        raise InvalidInput(
            "need old_size <= new_size <= the current tree size", fields=("old_size", "new_size")
        )
    try:
        proof = await tree.consistency_proof(session, old_size, new_size)
    except merkle.ProofError as exc:
        raise InvalidInput(str(exc), fields=("old_size",)) from None
    return ConsistencyProofOut(old_size=old_size, new_size=new_size, proof=[_b64(p) for p in proof])


def receipt_out(receipt: Receipt) -> ReceiptOut:
    return ReceiptOut(
        event=receipt.event,
        canonical_event=_b64(receipt.canonical),
        leaf_index=receipt.leaf_index,
        leaf_hash=_b64(receipt.leaf_hash),
        tree_size=receipt.checkpoint.tree_size,
        inclusion_proof=[_b64(p) for p in receipt.proof],
        checkpoint=receipt.checkpoint.cosigned_note,
    )


@router.get("/events/{event_id}/receipt", response_model=ReceiptOut, responses=problems(404, 409))
async def event_receipt(
    event_id: EventId,
    principal: ProofReader,
    session: ReadSessionDep,
    runtime: RuntimeDep,
    tree_size: Annotated[int | None, tree_size_query("prove against this checkpoint")] = None,
) -> ReceiptOut:
    """A receipt for an event: a member may fetch its own, an auditor any.

    Without ``tree_size``, the proof is against the first checkpoint that includes the
    event, so it stays the same however much the log grows.
    """
    read = await queries.receipt_for_event(
        session, recorder(runtime, principal), principal, event_id, tree_size=tree_size
    )
    return receipt_out(read.value)


@router.get("/leaves/{leaf_index}/receipt", response_model=ReceiptOut, responses=problems(404, 409))
async def leaf_receipt(
    leaf_index: LeafIndex,
    principal: ProofReader,
    session: ReadSessionDep,
    runtime: RuntimeDep,
    tree_size: Annotated[int | None, tree_size_query("prove against this checkpoint")] = None,
) -> ReceiptOut:
    """The event at a leaf index, with its inclusion proof (same rules as above)."""
    read = await queries.receipt_for_leaf(
        session, recorder(runtime, principal), principal, leaf_index, tree_size=tree_size
    )
    return receipt_out(read.value)


async def event_filter(
    since: Annotated[dt.datetime | None, Query(description="recorded at or after")] = None,
    until: Annotated[dt.datetime | None, Query(description="recorded before")] = None,
    member_id: Annotated[uuid.UUID | None, Query(description="events of this member")] = None,
    actor_type: Annotated[
        ActorType | None, Query(description="who acted: client, user or system")
    ] = None,
    client_id: Annotated[
        str | None, Query(max_length=64, description="events of this client credential")
    ] = None,
    user_id: Annotated[uuid.UUID | None, Query(description="events of this console user")] = None,
    tag: Annotated[Tag | None, Query(description="events of this kind (docs/audit.md)")] = None,
    subject: Annotated[
        str | None, Query(pattern=PSEUDONYM, description="events about this pseudonym")
    ] = None,
    purpose: Annotated[
        str | None, Query(pattern=r"^[a-z_]{1,32}$", description="queries for this purpose")
    ] = None,
    outcome: Annotated[Outcome | None, Query(description="success, refused or failed")] = None,
) -> EventFilter:
    for value in (since, until):
        if value is not None and value.tzinfo is None:
            raise InvalidInput("give times with a UTC offset, e.g. 2026-11-23T10:00:00Z")
    return EventFilter(
        since=since,
        until=until,
        member_id=member_id,
        actor_type=actor_type.value if actor_type else None,
        client_id=client_id,
        user_id=user_id,
        tag=tag.value if tag else None,
        subject=subject,
        purpose=purpose,
        outcome=outcome.value if outcome else None,
    )


Filter = Annotated[EventFilter, Depends(event_filter)]


@router.get("/events", response_model=EventPage)
async def list_events(
    principal: Auditor,
    filt: Filter,
    session: ReadSessionDep,
    runtime: RuntimeDep,
    cursor: Cursor = None,
    limit: Annotated[int, page_limit(queries.MAX_PAGE)] = 100,
) -> EventPage:
    """Audit events matching the filters, newest first (auditors only)."""
    read = await queries.list_events(
        session, recorder(runtime, principal), principal, filt, cursor=cursor, limit=limit
    )
    page = read.value
    return EventPage(
        events=[EventOut(event=e.event, leaf_index=e.leaf_index) for e in page.events],
        next_cursor=page.next_cursor,
    )


async def export(
    runtime: Runtime, principal: Principal, filt: EventFilter, *, file_format: str
) -> AsyncIterator[dict[str, Any]]:
    """Every matching event with its leaf index, oldest first, from one snapshot; the
    export is recorded before this returns (and so before the first byte is sent)."""
    read = await queries.export_events(
        create_snapshot_sessionmaker(runtime.engine),
        recorder(runtime, principal),
        principal,
        filt,
        file_format=file_format,
    )

    async def records() -> AsyncIterator[dict[str, Any]]:
        async for view in read.value():
            yield {"event": view.event, "leaf_index": view.leaf_index}

    return records()


def json_lines(records: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    async def lines() -> AsyncIterator[bytes]:
        async for record in records:
            yield (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()

    return lines()


@router.get("/events:export", response_class=StreamingResponse)
async def export_events(principal: Auditor, filt: Filter, runtime: RuntimeDep) -> StreamingResponse:
    """Every matching event as JSON Lines, oldest first, read from one snapshot."""
    records = await export(runtime, principal, filt, file_format="jsonl")
    return StreamingResponse(
        json_lines(records),
        media_type="application/jsonl",
        headers={"Content-Disposition": 'attachment; filename="audit-events.jsonl"'},
    )
