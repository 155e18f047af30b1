"""Signed checkpoints of the audit tree."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger import pagination
from ledger.access.keys import KeyRing, SigningKey
from ledger.audit import notes
from ledger.audit.models import AuditCheckpoint, AuditCosignature
from ledger.audit.tree import root_hash, tree_size
from ledger.errors import NotFound


@dataclass(frozen=True, slots=True)
class CheckpointView:
    tree_size: int
    root_hash: bytes
    created_at: dt.datetime
    key_id: str
    note: str  # as the ledger signed it
    cosignatures: tuple[str, ...] = ()  # witnesses' signature lines, in name order

    @property
    def cosigned_note(self) -> str:
        """The note with every witness's cosignature line after the ledger's own."""
        return self.note + "".join(self.cosignatures)


def _view(row: AuditCheckpoint, cosignatures: tuple[str, ...] = ()) -> CheckpointView:
    return CheckpointView(
        tree_size=row.tree_size,
        root_hash=bytes(row.root_hash),
        created_at=row.created_at,
        key_id=row.key_id,
        note=row.note,
        cosignatures=cosignatures,
    )


async def _views(session: AsyncSession, rows: list[AuditCheckpoint]) -> list[CheckpointView]:
    """Views with their cosignatures, in one more statement."""
    lines: dict[int, list[str]] = {r.tree_size: [] for r in rows}
    if rows:
        found = await session.execute(
            sa.select(AuditCosignature.tree_size, AuditCosignature.line)
            .where(AuditCosignature.tree_size.in_(lines))
            .order_by(AuditCosignature.witness)
        )
        for size, line in found:
            lines[size].append(line)
    return [_view(r, tuple(lines[r.tree_size])) for r in rows]


async def _one(session: AsyncSession, row: AuditCheckpoint | None) -> CheckpointView | None:
    return None if row is None else (await _views(session, [row]))[0]


async def latest(session: AsyncSession) -> CheckpointView | None:
    row = await session.scalar(
        sa.select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc()).limit(1)
    )
    return await _one(session, row)


async def at_size(session: AsyncSession, size: int) -> CheckpointView:
    view = await _one(session, await session.get(AuditCheckpoint, size))
    if view is None:
        raise NotFound(f"no checkpoint at tree size {size}")
    return view


async def covering(session: AsyncSession, size: int) -> CheckpointView | None:
    """The smallest checkpoint whose tree includes the first ``size`` leaves, if any."""
    row = await session.scalar(
        sa.select(AuditCheckpoint)
        .where(AuditCheckpoint.tree_size >= size)
        .order_by(AuditCheckpoint.tree_size)
        .limit(1)
    )
    return await _one(session, row)


async def history(
    session: AsyncSession, *, cursor: str | None = None, limit: int = 100
) -> tuple[list[CheckpointView], str | None]:
    """Signed checkpoints, newest first: a page and the cursor of the next."""
    query = sa.select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc())
    if cursor is not None:
        before = pagination.decode_int(cursor, "checkpoints")
        query = query.where(AuditCheckpoint.tree_size < before)
    rows = list(await session.scalars(query.limit(limit + 1)))
    page, next_cursor = pagination.cut(rows, limit, "checkpoints", lambda r: (r.tree_size,))
    return await _views(session, page), next_cursor


async def create(
    session: AsyncSession, *, ring: KeyRing, origin: str, now: dt.datetime
) -> tuple[CheckpointView, bool]:
    """Sign the current tree; returns (checkpoint, created). Idempotent per tree size."""
    size = await tree_size(session)
    existing = await session.get(AuditCheckpoint, size)
    if existing is not None:
        return _view(existing), False
    key: SigningKey = ring.signing_key
    checkpoint = notes.Checkpoint(
        origin=origin,
        tree_size=size,
        root_hash=await root_hash(session, size),
        time=now.replace(microsecond=0),
    )
    row = AuditCheckpoint(
        tree_size=size,
        root_hash=checkpoint.root_hash,
        created_at=checkpoint.time,
        key_id=key.kid,
        note=notes.sign(checkpoint.text(), origin, key.private_key),
    )
    session.add(row)
    await session.flush()
    return _view(row), True


def verifier_keys(ring: KeyRing, origin: str) -> list[dict[str, object]]:
    """Every checkpoint key ever used (retired ones still verify old checkpoints)."""
    return [
        {
            "key_id": k.kid,
            "verifier_key": notes.verifier_key(origin, k.public_key),
            "public_jwk": k.public_jwk(),
            "created_at": k.created_at,
            "retired_at": k.retired_at,
        }
        for k in ring.keys
    ]
