"""RFC 6962 / RFC 9162 Merkle trees: hashes, inclusion and consistency proofs.

Pure functions, no database. Subtree hashes are read through a ``NodeGetter``: for a
*perfect* subtree (2^level leaves starting at ``index << level``) it returns the stored
hash, so a tree of any size is served from O(log n) stored nodes per hash needed.
``MemoryTree`` is the in-memory implementation used by tests and by verification.

    leaf hash  = SHA-256(0x00 || leaf bytes)
    node hash  = SHA-256(0x01 || left || right)
    empty tree = SHA-256("")
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# (level, index) -> hash of the perfect subtree of 2^level leaves at index << level.
NodeGetter = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof does not verify, or was asked for impossible tree sizes."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two strictly smaller than ``size`` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def subtree_hash(get: NodeGetter, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a subtree of the left-balanced tree."""
    size = end - start
    if size <= 0:
        return EMPTY_ROOT
    if size & (size - 1) == 0 and start % size == 0:
        level = size.bit_length() - 1
        return get(level, start >> level)
    k = _split(size)
    return node_hash(subtree_hash(get, start, start + k), subtree_hash(get, start + k, end))


def root_hash(get: NodeGetter, size: int) -> bytes:
    return subtree_hash(get, 0, size)


def inclusion_proof(get: NodeGetter, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) from RFC 6962 §2.1.1, leaf-side first."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}")
    proof: list[bytes] = []
    start, end = 0, size
    # Walk down from the root, collecting the sibling of each step, then reverse.
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            proof.append(subtree_hash(get, start + k, end))
            end = start + k
        else:
            proof.append(subtree_hash(get, start, start + k))
            start += k
    proof.reverse()
    return proof


def consistency_proof(get: NodeGetter, old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) from RFC 6962 §2.1.2."""
    if not 0 < old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size == new_size:
        return []
    return _subproof(get, old_size, 0, new_size, have_root=True)


def _subproof(get: NodeGetter, m: int, start: int, end: int, *, have_root: bool) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if have_root else [subtree_hash(get, start, end)]
    k = _split(n)
    if m <= k:
        return [
            *_subproof(get, m, start, start + k, have_root=have_root),
            subtree_hash(get, start + k, end),
        ]
    return [
        *_subproof(get, m - k, start + k, end, have_root=False),
        subtree_hash(get, start, start + k),
    ]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2. ``leaf`` is the leaf *hash*. Raises ``ProofError``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != HASH_SIZE or sn == 0:
            raise ProofError("the inclusion proof is malformed")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != root:
        raise ProofError("the inclusion proof does not lead to the root")


def verify_consistency(  # noqa: PLR0912  (RFC 9162 §2.1.4.2, step by step)
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2. Raises ``ProofError``."""
    if not 0 < old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size == new_size:
        if proof or old_root != new_root:
            raise ProofError("equal sizes need an empty proof and equal roots")
        return
    path = list(proof)
    if any(len(p) != HASH_SIZE for p in path) or not path:
        raise ProofError("the consistency proof is malformed")
    if old_size & (old_size - 1) == 0:  # old tree is a perfect subtree: its root leads
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise ProofError("the consistency proof does not match the two roots")


def completed_nodes(
    new_index: int, new_leaf: bytes, get: NodeGetter
) -> list[tuple[int, int, bytes]]:
    """The perfect subtrees completed by appending leaf ``new_index``, leaf included.

    Returns ``(level, index, hash)`` triples: the leaf at level 0, then one node per
    level for as long as the new leaf closes a right sibling.
    """
    nodes = [(0, new_index, new_leaf)]
    level, index, current = 0, new_index, new_leaf
    while index & 1:
        left = get(level, index - 1)
        current = node_hash(left, current)
        level += 1
        index >>= 1
        nodes.append((level, index, current))
    return nodes


class MemoryTree:
    """An append-only tree in memory, storing every perfect subtree's hash."""

    def __init__(self) -> None:
        self.levels: list[list[bytes]] = []

    @property
    def size(self) -> int:
        return len(self.levels[0]) if self.levels else 0

    def append(self, leaf: bytes) -> None:
        """Append a leaf *hash*."""
        for level, index, value in completed_nodes(self.size, leaf, self.get):
            if level == len(self.levels):
                self.levels.append([])
            assert len(self.levels[level]) == index
            self.levels[level].append(value)

    def append_data(self, data: bytes) -> None:
        self.append(leaf_hash(data))

    def get(self, level: int, index: int) -> bytes:
        return self.levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        return root_hash(self.get, self.size if size is None else size)
