"""Verify an audit receipt offline, with nothing but the ledger's public verifier key.

    python -m ledger.client.receipts receipt.json "refund-ledger/audit+1a2b3c4d+AcmB…"

A receipt is the JSON from GET /v1/audit/events/{id}/receipt. The verifier key is from
GET /v1/audit/keys (pin it: fetch it once, out of band, and keep it). This module uses
only the standard library and `cryptography` and imports nothing else from the ledger,
so it is also the reference for writing the same check in another language. The SDK's
``audit_receipt()`` calls ``verify_receipt`` below.

Checks, in order:
  1. the checkpoint note carries a valid Ed25519 signature by the pinned key;
  2. the event's canonical bytes hash to the receipt's leaf hash;
  3. the inclusion proof leads from that leaf to the checkpoint's root (RFC 9162 §2.1.3.2).
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Invalid(Exception):
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


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> None:
    if index >= size:
        raise Invalid("the leaf is outside the tree")
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


def verify_receipt(receipt: dict[str, object], verifier_key: str) -> dict[str, object]:
    """Raise ``Invalid`` unless the receipt holds; return the event."""
    size, root = open_checkpoint(str(receipt["checkpoint"]), verifier_key)
    if size != receipt["tree_size"]:
        raise Invalid("the receipt's tree size differs from its checkpoint's")
    canonical = base64.b64decode(str(receipt["canonical_event"]))
    leaf = hashlib.sha256(b"\x00" + canonical).digest()
    if base64.b64encode(leaf).decode() != receipt["leaf_hash"]:
        raise Invalid("the event does not hash to the leaf")
    event = json.loads(canonical)
    if event != receipt["event"]:
        raise Invalid("the event shown differs from the one hashed")
    proof = [base64.b64decode(p) for p in receipt["inclusion_proof"]]  # type: ignore[attr-defined]
    verify_inclusion(leaf, int(receipt["leaf_index"]), size, proof, root)  # type: ignore[call-overload]
    return dict(event)


def main() -> int:
    if len(sys.argv) != 3:
        sys.stderr.write(f"{__doc__}\n")
        return 2
    with open(sys.argv[1], encoding="utf-8") as fh:
        receipt = json.load(fh)
    try:
        event = verify_receipt(receipt, sys.argv[2])
    except Invalid as exc:
        sys.stderr.write(f"INVALID: {exc}\n")
        return 1
    sys.stdout.write(
        f"OK: event {event['id']} ({event['tag']}) is leaf {receipt['leaf_index']} "
        f"of the signed tree of size {receipt['tree_size']}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
