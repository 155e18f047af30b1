"""Checkpoints as C2SP signed notes (the format of Go's sumdb and of transparency logs).

A checkpoint's text (C2SP tlog-checkpoint)::

    <origin>
    <tree size, decimal>
    <root hash, base64>
    time <RFC 3339 UTC>

followed by a blank line and one signature line per key::

    — <key name> <base64(key hash (4 bytes) || Ed25519 signature of the text)>

The key hash is the first 4 bytes of SHA-256(name || "\\n" || 0x01 || public key), and a
verifier key is written ``<name>+<key hash, 8 hex digits>+<base64(0x01 || public key)>``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.access.keys import public_raw

ALG_ED25519 = b"\x01"
SIG_PREFIX = "\u2014 "


class NoteError(ValueError):
    """A note or checkpoint that is malformed or whose signature does not verify."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes
    time: dt.datetime

    def text(self) -> str:
        stamp = self.time.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        root = base64.b64encode(self.root_hash).decode("ascii")
        return f"{self.origin}\n{self.tree_size}\n{root}\ntime {stamp}\n"


def key_hash(name: str, public_key: Ed25519PublicKey, alg: bytes = ALG_ED25519) -> bytes:
    """The key id: ``SHA-256(name || "\\n" || alg || key)[:4]`` (0x01 signs notes,
    0x04 cosigns checkpoints: ledger/audit/witness.py)."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + alg + public_raw(public_key))
    return digest.digest()[:4]


def verifier_key(name: str, public_key: Ed25519PublicKey, alg: bytes = ALG_ED25519) -> str:
    encoded = base64.b64encode(alg + public_raw(public_key)).decode("ascii")
    return f"{name}+{key_hash(name, public_key, alg).hex()}+{encoded}"


def parse_verifier_key(text: str, alg: bytes = ALG_ED25519) -> tuple[str, Ed25519PublicKey]:
    try:
        # Names hold no '+'; base64 may: split on the first two.
        name, hash_hex, encoded = text.split("+", 2)
        raw = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise NoteError("a verifier key is <name>+<hash>+<base64 key>") from None
    if len(raw) != 33 or raw[:1] != alg:
        raise NoteError(f"only Ed25519 keys of type 0x{alg.hex()} are supported here")
    public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
    if key_hash(name, public_key, alg).hex() != hash_hex:
        raise NoteError("the verifier key's hash does not match its name and key")
    return name, public_key


def sign(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """The signed note: ``text``, a blank line and one signature line."""
    if not text.endswith("\n"):
        raise NoteError("a note's text ends with a newline")
    signature = private_key.sign(text.encode("utf-8"))
    blob = base64.b64encode(key_hash(name, private_key.public_key()) + signature).decode("ascii")
    return f"{text}\n{SIG_PREFIX}{name} {blob}\n"


def open_note(note: str, name: str, public_key: Ed25519PublicKey) -> str:
    """The note's text, if a signature by ``name``'s key verifies; else ``NoteError``."""
    text, sep, signatures = note.rpartition("\n\n")
    if not sep:
        raise NoteError("a signed note has a blank line before its signatures")
    text += "\n"
    wanted = key_hash(name, public_key)
    for line in signatures.splitlines():
        if not line.startswith(SIG_PREFIX):
            raise NoteError("a signature line starts with an em dash")
        signer, _, blob = line[len(SIG_PREFIX) :].rpartition(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except ValueError:
            raise NoteError("a signature is not base64") from None
        if signer != name or raw[:4] != wanted:
            continue
        try:
            public_key.verify(raw[4:], text.encode("utf-8"))
        except InvalidSignature:
            raise NoteError(f"the signature by {name} does not verify") from None
        return text
    raise NoteError(f"the note carries no signature by {name}")


def parse_checkpoint(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) < 5 or lines[-1] != "":
        raise NoteError("a checkpoint has an origin, a size, a root and a time line")
    origin, size, root, stamp = lines[0], lines[1], lines[2], lines[3]
    if not size.isdigit() or not stamp.startswith("time "):
        raise NoteError("the checkpoint's size or time line is malformed")
    try:
        root_hash = base64.b64decode(root, validate=True)
        time = dt.datetime.strptime(stamp[5:], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise NoteError("the checkpoint's root hash or time is malformed") from None
    if len(root_hash) != 32:
        raise NoteError("the checkpoint's root hash is not 32 bytes")
    return Checkpoint(origin=origin, tree_size=int(size), root_hash=root_hash, time=time)
