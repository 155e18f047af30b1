"""The ledger's pseudonym key: one VOPRF key pair, made once by ``ledger init``.

Kept in ``<key_dir>/pseudonym/key.json`` (0600, in a 0700 directory)::

    {"suite": "ristretto255-SHA512", "mode": "voprf", "key_id": "...",
     "created_at": "...", "secret_key": "<64 hex digits>"}

Unlike the signing keys, this key is not rotated on a schedule: every pseudonym in the
ledger is a function of it, so a new key means new pseudonyms for every buyer (see
docs/privacy.md, "Key custody"). The key id is the first 16 bytes of SHA-256 over the
suite name and the public key, base64url: it names the key in every answer, so a
member's SDK notices a changed key instead of mixing pseudonyms from two keys.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from refund_ledger_client.voprf import VOPRF, Suite, deserialize_scalar

from ledger.access.keys import b64url, make_private_dir, write_private

KEY_DIR = "pseudonym"
KEY_FILE = "key.json"
SUITE_NAME = "ristretto255-SHA512"
KEY_INFO = b"refund-ledger pseudonym key v1"
SUITE = Suite(VOPRF)


def key_id(public_key: bytes) -> str:
    return b64url(hashlib.sha256(SUITE_NAME.encode("ascii") + public_key).digest()[:16])


@dataclass(frozen=True, slots=True)
class PseudonymKey:
    key_id: str
    secret_key: bytes
    public_key: bytes
    created_at: dt.datetime

    def published(self) -> dict[str, str]:
        """What anyone may know: the suite, the key id and the public key."""
        return {
            "suite": SUITE_NAME,
            "mode": "voprf",
            "key_id": self.key_id,
            "public_key": b64url(self.public_key),
            "created_at": self.created_at.isoformat(),
        }


def ensure_key(directory: Path, *, now: dt.datetime) -> bool:
    """Make the key if there is none; True if it was made now."""
    path = directory / KEY_FILE
    if path.exists():
        return False
    make_private_dir(directory)
    # DeriveKeyPair over 32 fresh random bytes (RFC 9497 §3.2.1); the seed is not kept.
    secret, public = SUITE.derive_key_pair(os.urandom(32), KEY_INFO)
    document = {
        "suite": SUITE_NAME,
        "mode": "voprf",
        "key_id": key_id(public),
        "created_at": now.isoformat(),
        "secret_key": secret.hex(),
    }
    write_private(path, json.dumps(document, indent=2).encode("utf-8"))
    return True


def load_key(directory: Path) -> PseudonymKey:
    """The key, checked: the suite, the scalar and the key id must all agree."""
    path = directory / KEY_FILE
    try:
        document = json.loads(path.read_text("utf-8"))
        secret = deserialize_scalar(bytes.fromhex(document["secret_key"]))
        created_at = dt.datetime.fromisoformat(document["created_at"])
    except FileNotFoundError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"the pseudonym key file {path.name} is damaged") from exc
    if document.get("suite") != SUITE_NAME or document.get("mode") != "voprf":
        raise ValueError(f"the pseudonym key file {path.name} is not for {SUITE_NAME} VOPRF")
    public = SUITE.public_key(secret)
    if document.get("key_id") != key_id(public):
        raise ValueError(f"the pseudonym key file {path.name} has the wrong key id")
    return PseudonymKey(
        key_id=key_id(public), secret_key=secret, public_key=public, created_at=created_at
    )
