"""The key that seals console users' TOTP secrets in the database (AES-256-GCM).

A TOTP secret must be readable by the ledger (it computes the expected code), so it
cannot be hashed like a password; it is sealed instead, so that a copy of the database
alone gives nobody a second factor. The key is made once by ``ledger init`` and kept in
``<key_dir>/second-factor/key.json`` (0600, in a 0700 directory)::

    {"key_id": "...", "created_at": "...", "key": "<64 hex digits>"}

A sealed value is ``v1.<key_id>.<base64url(nonce ‖ ciphertext ‖ tag)>``, with the user's
id as associated data: a sealed secret copied onto another user's row does not open.
A lost key means every enrolled user sets up their second factor again (an operator
resets it: ``ledger users reset-second-factor``); nothing else depends on it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.access.keys import b64url, make_private_dir, write_private

KEY_DIR = "second-factor"
KEY_FILE = "key.json"
VERSION = "v1"
NONCE_BYTES = 12


def _key_id(key: bytes) -> str:
    return b64url(hashlib.sha256(b"refund-ledger second-factor key v1" + key).digest()[:12])


class UnsealError(ValueError):
    """A sealed value that this key cannot open (another key, another user, damaged)."""


@dataclass(frozen=True, slots=True)
class SealingKey:
    key_id: str
    key: bytes
    created_at: dt.datetime

    def seal(self, owner: uuid.UUID, plaintext: bytes) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.key).encrypt(nonce, plaintext, owner.bytes)
        return f"{VERSION}.{self.key_id}.{b64url(nonce + sealed)}"

    def open(self, owner: uuid.UUID, value: str) -> bytes:
        version, _, rest = value.partition(".")
        key_id, _, body = rest.partition(".")
        if version != VERSION or key_id != self.key_id:
            raise UnsealError("sealed with another key")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return AESGCM(self.key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], owner.bytes)
        except (InvalidTag, ValueError) as exc:
            raise UnsealError("the sealed value does not open for this user") from exc


def ensure_key(directory: Path, *, now: dt.datetime) -> bool:
    """Make the key if there is none; True if it was made now."""
    path = directory / KEY_FILE
    if path.exists():
        return False
    make_private_dir(directory)
    key = AESGCM.generate_key(bit_length=256)
    document = {"key_id": _key_id(key), "created_at": now.isoformat(), "key": key.hex()}
    write_private(path, json.dumps(document, indent=2).encode("utf-8"))
    return True


def load_key(directory: Path) -> SealingKey:
    path = directory / KEY_FILE
    try:
        document = json.loads(path.read_text("utf-8"))
        key = bytes.fromhex(document["key"])
        created_at = dt.datetime.fromisoformat(document["created_at"])
    except FileNotFoundError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"the second-factor key file {path.name} is damaged") from exc
    if len(key) != 32 or document.get("key_id") != _key_id(key):
        raise ValueError(f"the second-factor key file {path.name} has the wrong key or key id")
    return SealingKey(key_id=_key_id(key), key=key, created_at=created_at)
