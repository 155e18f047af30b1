"""Verify an audit receipt offline, with nothing but the ledger's public verifier key.

From a shell: ``python -m refund_ledger_client.receipts receipt.json "<verifier key>"``.

A receipt is the JSON from GET /v1/audit/events/{id}/receipt. The verifier key is from
GET /v1/audit/keys (pin it: fetch it once, out of band, and keep it). This module uses
only the standard library and `cryptography` and imports nothing else from the ledger,
so it is also the reference for writing the same check in another language. The SDK's
``audit_receipt()`` calls ``verify_receipt`` below.

Checks, in order:
  1. the checkpoint note carries a valid Ed25519 signature by the pinned key;
  2. the event's canonical bytes hash to the receipt's leaf hash;
  3. the inclusion proof leads from that leaf to the checkpoint's root (RFC 9162 §2.1.3.2).

Everything in a receipt is checked for its type before it is used, as RFC 9162 requires
of a verifier: the leaf index and tree size are integers with ``0 <= index < size``
(not ``true``, ``"74"`` or ``74.9``), and every hash is 32 bytes. Anything malformed is
``Invalid`` with a sentence that says what, never another exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from refund_ledger_client.errors import LedgerError


class Invalid(LedgerError):
    """The receipt does not prove what it claims."""


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def open_checkpoint(note: str, verifier_key: str) -> tuple[int, bytes]:
    """Check the note's signature; return (tree size, root hash)."""
    name, key_hash_hex, key_b64 = verifier_key.split("+", 2)
    raw = base64.b64decode(key_b64)
    if raw[:1] != b"\x01" or len(raw) != 33:
        raise Invalid("not an Ed25519 verifier key")
    key = Ed25519PublicKey.from_public_bytes(raw[1:])
    expected_hash = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if expected_hash.hex() != key_hash_hex:
        raise Invalid("the verifier key's hash does not match")
    text, _, signatures = note.rpartition("\n\n")
    text += "\n"
    for line in signatures.splitlines():
        signer, _, blob = line.removeprefix("\u2014 ").rpartition(" ")
        sig = base64.b64decode(blob)
        if signer == name and sig[:4] == expected_hash:
            try:
                key.verify(sig[4:], text.encode())
            except InvalidSignature:
                raise Invalid("the checkpoint signature does not verify") from None
            origin, size, root = text.split("\n")[:3]
            if origin != name:
                raise Invalid("the checkpoint is for another log")
            return int(size), base64.b64decode(root)
    raise Invalid("the checkpoint is not signed by this key")


HASH_SIZE = 32


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2, with the checks on its inputs that the RFC asks for."""
    for name, value in (("index", index), ("size", size)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise Invalid(f"the leaf {name} is not an integer")
    if not 0 <= index < size:
        raise Invalid("the leaf is outside the tree")
    if any(not isinstance(h, bytes) or len(h) != HASH_SIZE for h in (leaf, root, *proof)):
        raise Invalid("a hash in the receipt is not 32 bytes")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise Invalid("the proof is too long")
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != root:
        raise Invalid("the inclusion proof does not lead to the signed root")


def _integer(receipt: dict[str, object], name: str) -> int:
    value = receipt.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise Invalid(f"the receipt's {name} is not an integer")
    return value


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise Invalid(f"the receipt's {what} is not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(f"the receipt's {what} is not valid base64") from None


def verify_receipt(receipt: object, verifier_key: object) -> dict[str, object]:
    """Raise ``Invalid`` unless the receipt holds; return the event."""
    if not isinstance(receipt, dict):
        raise Invalid("a receipt is a JSON object, as GET /v1/audit/events/{id}/receipt gives")
    if not isinstance(verifier_key, str) or verifier_key.count("+") < 2:
        raise Invalid("the verifier key is <name>+<key hash>+<base64 key>, from /v1/audit/keys")
    note = receipt.get("checkpoint")
    if not isinstance(note, str):
        raise Invalid("the receipt has no checkpoint note")
    try:
        size, root = open_checkpoint(note, verifier_key)
    except (ValueError, binascii.Error):
        raise Invalid("the checkpoint note or the verifier key is malformed") from None
    if size != _integer(receipt, "tree_size"):
        raise Invalid("the receipt's tree size differs from its checkpoint's")
    canonical = _b64(receipt.get("canonical_event"), "canonical_event")
    leaf = hashlib.sha256(b"\x00" + canonical).digest()
    if _b64(receipt.get("leaf_hash"), "leaf_hash") != leaf:
        raise Invalid("the event does not hash to the leaf")
    try:
        event = json.loads(canonical)
    except ValueError:
        raise Invalid("the canonical event is not JSON") from None
    if not isinstance(event, dict) or event != receipt.get("event"):
        raise Invalid("the event shown differs from the one hashed")
    proof = receipt.get("inclusion_proof")
    if not isinstance(proof, list):
        raise Invalid("the receipt's inclusion_proof is not a list")
    hashes = [_b64(p, "inclusion_proof") for p in proof]
    verify_inclusion(leaf, _integer(receipt, "leaf_index"), size, hashes, root)
    return dict(event)


class CheckpointMemory:
    """The newest checkpoint this client has seen of each log, kept so that the log
    cannot later show it a smaller or different history (C2SP's "a client remembers").

    In memory, and in a JSON file (0600) when given a path, so that the memory outlives
    the process. ``ledger audit verify --against <that file>`` reads it too.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = None if path is None else Path(path)
        self._seen: dict[str, dict[str, object]] = {}
        if self.path is not None and self.path.exists():
            self._seen = json.loads(self.path.read_text(encoding="utf-8"))

    def get(self, origin: str) -> tuple[int, bytes] | None:
        entry = self._seen.get(origin)
        if entry is None:
            return None
        return int(str(entry["size"])), base64.b64decode(str(entry["root"]))

    def remember(self, origin: str, size: int, root: bytes, note: str) -> None:
        self._seen[origin] = {"size": size, "root": base64.b64encode(root).decode(), "note": note}
        if self.path is not None:
            text = json.dumps(self._seen, indent=2, sort_keys=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                os.fchmod(fh.fileno(), 0o600)
                fh.write(text)
            os.replace(tmp, self.path)
