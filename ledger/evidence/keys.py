"""The fingerprint key: what the ledger stores is never a raw PDQ hash.

Published attacks rebuild a recognisable thumbnail from PDQ's 256 bits (arXiv
2406.00918), so a leaked table of raw hashes would leak the photos' content. Every
fingerprint is stored, and matched, as ``T(h) = permute(h) XOR mask``: a secret
permutation of the 256 bit positions, then a secret 256-bit mask. ``T`` is a bijection
that preserves Hamming distance exactly (both steps do), so matching on stored values
gives the same answers as matching on raw hashes, while the stored bits say nothing
about where in the image each bit came from, or which way it points.

The key is made once by ``ledger init`` and kept in ``<key_dir>/evidence/key.json``
(0600, in a 0700 directory)::

    {"key_id": "...", "created_at": "...", "permutation": [256 distinct 0-255],
     "mask": "<64 hex digits>"}

A new key means re-transforming every stored fingerprint (``T`` is invertible, so the
ledger can do it in place); it is not rotated on a schedule.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ledger.access.keys import b64url, make_private_dir, write_private

KEY_DIR = "evidence"
KEY_FILE = "key.json"
BITS = 256
BYTES = BITS // 8


@dataclass(frozen=True, slots=True)
class FingerprintKey:
    key_id: str
    permutation: np.ndarray[Any, np.dtype[np.intp]]  # output bit i is input bit permutation[i]
    mask: np.ndarray[Any, np.dtype[np.uint8]]  # 32 bytes
    created_at: dt.datetime

    def transform(self, raw: bytes) -> bytes:
        """``T(raw)`` for one 32-byte hash."""
        return bytes(self.transform_many(np.frombuffer(raw, dtype=np.uint8).reshape(1, BYTES))[0])

    def transform_many(
        self, raw: np.ndarray[Any, np.dtype[np.uint8]]
    ) -> np.ndarray[Any, np.dtype[np.uint8]]:
        """``T`` of each row of an (n, 32) array of hashes."""
        if raw.ndim != 2 or raw.shape[1] != BYTES:
            raise ValueError("hashes are rows of 32 bytes")
        bits = np.unpackbits(raw, axis=1)[:, self.permutation]
        out: np.ndarray[Any, np.dtype[np.uint8]] = np.packbits(bits, axis=1) ^ self.mask
        return out

    def invert(self, stored: bytes) -> bytes:
        """The raw hash back from ``T(raw)`` (for re-keying; never served)."""
        bits = np.unpackbits(np.frombuffer(stored, dtype=np.uint8) ^ self.mask)
        raw = np.empty(BITS, dtype=np.uint8)
        raw[self.permutation] = bits
        return np.packbits(raw).tobytes()


def _key_id(permutation: list[int], mask: bytes) -> str:
    digest = hashlib.sha256(bytes(permutation) + mask).digest()
    return b64url(digest[:12])


def ensure_key(directory: Path, *, now: dt.datetime) -> bool:
    """Make the key if there is none; True if it was made now."""
    path = directory / KEY_FILE
    if path.exists():
        return False
    make_private_dir(directory)
    permutation = list(range(BITS))
    secrets.SystemRandom().shuffle(permutation)
    mask = secrets.token_bytes(BYTES)
    document = {
        "key_id": _key_id(permutation, mask),
        "created_at": now.isoformat(),
        "permutation": permutation,
        "mask": mask.hex(),
    }
    write_private(path, json.dumps(document).encode("utf-8"))
    return True


class FingerprintKeyError(Exception):
    pass


def load_key(directory: Path) -> FingerprintKey:
    """The key, checked: a permutation of all 256 positions, a 32-byte mask, its id."""
    path = directory / KEY_FILE
    try:
        document = json.loads(path.read_text("utf-8"))
        permutation = [int(i) for i in document["permutation"]]
        mask = bytes.fromhex(document["mask"])
        created_at = dt.datetime.fromisoformat(document["created_at"])
    except FileNotFoundError:
        raise FingerprintKeyError(f"no fingerprint key at {path}: run `ledger init`") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise FingerprintKeyError(f"the fingerprint key at {path} is unreadable: {exc}") from None
    if sorted(permutation) != list(range(BITS)) or len(mask) != BYTES:
        raise FingerprintKeyError(f"the fingerprint key at {path} is malformed")
    if document.get("key_id") != _key_id(permutation, mask):
        raise FingerprintKeyError(f"the fingerprint key at {path} does not match its id")
    return FingerprintKey(
        key_id=document["key_id"],
        permutation=np.asarray(permutation, dtype=np.intp),
        mask=np.frombuffer(mask, dtype=np.uint8).copy(),
        created_at=created_at,
    )
