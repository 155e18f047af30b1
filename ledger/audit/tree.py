"""The Merkle tree as stored: leaves, perfect-subtree nodes, roots and proofs.

A proof or root needs O(log n) stored nodes. Which ones does not depend on their
values, so each computation runs twice: once with a recording getter to learn the node
keys, then once more with the nodes fetched in a single query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import sqlalchemy as sa
from refund_ledger_client import merkle
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit.models import AuditLeaf, AuditNode
from ledger.errors import NotFound

T = TypeVar("T")
_PLACEHOLDER = bytes(32)


async def tree_size(session: AsyncSession) -> int:
    last = await session.scalar(sa.select(sa.func.max(AuditLeaf.leaf_index)))
    return 0 if last is None else int(last) + 1


async def fetch_nodes(
    session: AsyncSession, keys: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], bytes]:
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = await session.execute(
        sa.select(AuditNode.level, AuditNode.idx, AuditNode.hash).where(
            sa.tuple_(AuditNode.level, AuditNode.idx).in_(wanted)
        )
    )
    found = {(int(r.level), int(r.idx)): bytes(r.hash) for r in rows}
    missing = [k for k in wanted if k not in found]
    if missing:
        raise NotFound(f"the audit tree is missing node {missing[0]}: run `ledger audit verify`")
    return found


async def compute(session: AsyncSession, fn: Callable[[merkle.NodeGetter], T]) -> T:
    """Run a pure Merkle computation against the stored nodes."""
    keys: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        keys.add((level, index))
        return _PLACEHOLDER

    fn(record)
    nodes = await fetch_nodes(session, keys)
    return fn(lambda level, index: nodes[(level, index)])


async def root_hash(session: AsyncSession, size: int) -> bytes:
    return await compute(session, lambda get: merkle.root_hash(get, size))


async def inclusion_proof(session: AsyncSession, index: int, size: int) -> list[bytes]:
    return await compute(session, lambda get: merkle.inclusion_proof(get, index, size))


async def consistency_proof(session: AsyncSession, old: int, new: int) -> list[bytes]:
    return await compute(session, lambda get: merkle.consistency_proof(get, old, new))


def frontier_keys(size: int) -> list[tuple[int, int]]:
    """The perfect subtrees on the tree's right edge: what appending a leaf may join."""
    return [(level, (size >> level) - 1) for level in range(size.bit_length()) if size >> level & 1]
