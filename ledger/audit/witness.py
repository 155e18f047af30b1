"""A cosigning witness for the audit log (C2SP tlog-witness, tlog-cosignature v1).

A log operator with database access can delete the newest checkpoint and everything
after it, and the log still verifies. Only a checkpoint kept outside the ledger catches
that. A witness, run by a member or a regulator, keeps the newest checkpoint it cosigned.
It cosigns a new one only if a consistency proof shows that the new one extends it. The
ledger sends every checkpoint it signs to its witnesses and serves their cosignatures
with the checkpoint. ``ledger audit verify --against <witness URL>`` then names a tail
that has gone missing.

Protocol (C2SP tlog-witness): ``POST /add-checkpoint`` with ``old <size>``, the proof
lines, a blank line and the signed checkpoint. The answers are 200 with cosignature
lines; 409 ``text/x.tlog.size`` when ``old`` is not the witness's size (its body says
the size); 422 for a proof that does not verify; 403 for a bad signature; 404 for an
unknown log; 400 for a malformed body. ``GET /checkpoint`` (this witness's monitoring
read) answers the newest cosigned checkpoint of the log named by ``?origin=``.

The cosignature is Ed25519 over ``cosignature/v1``, ``time <unix seconds>`` and the
checkpoint's body. Its key id is ``SHA-256(name || "\\n" || 0x04 || public key)[:4]``,
and the signature blob is ``key id || u64 timestamp || signature``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from refund_ledger_client import merkle

from ledger.access.keys import make_private_dir, write_private
from ledger.audit import notes

ALG_COSIGNATURE = b"\x04"
MAX_PROOF_LINES = 63
SIZE_TYPE = "text/x.tlog.size"
KEY_FILE = "witness.key"
STATE_FILE = "state.json"
# How `ledger audit witness serve` hands its settings to the server it starts.
WITNESS_ENV = "LEDGER_WITNESS_CONFIG"


class CosignatureError(notes.NoteError):
    """A cosignature, or a witness key, that is malformed or does not verify."""


def cosigner_key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    return notes.key_hash(name, public_key, ALG_COSIGNATURE)


def cosigner_verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """``<name>+<key id hex>+<base64(0x04 || key)>`` (a C2SP vkey)."""
    return notes.verifier_key(name, public_key, ALG_COSIGNATURE)


def parse_cosigner_key(text: str) -> tuple[str, Ed25519PublicKey]:
    try:
        return notes.parse_verifier_key(text, ALG_COSIGNATURE)
    except notes.NoteError as exc:
        raise CosignatureError(f"a witness key: {exc}") from None


def _message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


def cosign(body: str, name: str, private_key: Ed25519PrivateKey, timestamp: int) -> str:
    """The cosignature line for a checkpoint's ``body`` (its text, with final newline)."""
    signature = private_key.sign(_message(body, timestamp))
    key_id = cosigner_key_id(name, private_key.public_key())
    blob = base64.b64encode(key_id + struct.pack(">Q", timestamp) + signature).decode()
    return f"{notes.SIG_PREFIX}{name} {blob}\n"


def verify_cosignature(body: str, line: str, name: str, public_key: Ed25519PublicKey) -> int:
    """The cosignature's timestamp, if ``line`` is a valid cosignature by ``name``."""
    prefix = f"{notes.SIG_PREFIX}{name} "
    if not line.startswith(prefix):
        raise CosignatureError(f"not a signature line by {name}")
    try:
        raw = base64.b64decode(line[len(prefix) :].strip(), validate=True)
    except ValueError:
        raise CosignatureError("the cosignature is not base64") from None
    if len(raw) != 4 + 8 + 64 or raw[:4] != cosigner_key_id(name, public_key):
        raise CosignatureError(f"not a cosignature by {name}'s key")
    (timestamp,) = struct.unpack(">Q", raw[4:12])
    try:
        public_key.verify(raw[12:], _message(body, timestamp))
    except InvalidSignature:
        raise CosignatureError(f"the cosignature by {name} does not verify") from None
    return int(timestamp)


@dataclass(frozen=True, slots=True)
class Head:
    """The first three lines of a checkpoint: what a witness vouches for."""

    origin: str
    size: int
    root: bytes

    @classmethod
    def of(cls, body: str) -> Head:
        lines = body.split("\n")
        if len(lines) < 4 or not lines[1].isdigit() or lines[1] != str(int(lines[1])):
            raise notes.NoteError("a checkpoint starts with its origin, size and root hash")
        try:
            root = base64.b64decode(lines[2], validate=True)
        except ValueError:
            raise notes.NoteError("the checkpoint's root hash is not base64") from None
        if len(root) != 32:
            raise notes.NoteError("the checkpoint's root hash is not 32 bytes")
        return cls(lines[0], int(lines[1]), root)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


def _body_of(note: str) -> str:
    text, sep, _ = note.rpartition("\n\n")
    if not sep:
        raise notes.NoteError("a signed note has a blank line before its signatures")
    return text + "\n"


class Witness:
    """Keeps, per log, the newest checkpoint it cosigned, in one JSON file (0600)."""

    def __init__(
        self, *, name: str, key: Ed25519PrivateKey, logs: dict[str, str], state: Path
    ) -> None:
        self.name = name
        self._key = key
        self._logs = {origin: notes.parse_verifier_key(vkey) for origin, vkey in logs.items()}
        self._state_path = state
        self._lock = asyncio.Lock()  # checking the old size and storing the new one: atomic

    @classmethod
    def load(cls, directory: Path, *, name: str, logs: dict[str, str]) -> Witness:
        pem = (directory / KEY_FILE).read_bytes()
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, Ed25519PrivateKey)
        return cls(name=name, key=key, logs=logs, state=directory / STATE_FILE)

    @staticmethod
    def create_key(directory: Path) -> Ed25519PrivateKey:
        """Make the witness's key once (0600); keep an existing one."""
        make_private_dir(directory)
        path = directory / KEY_FILE
        if not path.exists():
            private = Ed25519PrivateKey.generate()
            pem = private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            write_private(path, pem)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, Ed25519PrivateKey)
        return key

    @property
    def verifier_key(self) -> str:
        return cosigner_verifier_key(self.name, self._key.public_key())

    def _state(self) -> dict[str, dict[str, str | int]]:
        if not self._state_path.exists():
            return {}
        data: dict[str, dict[str, str | int]] = json.loads(self._state_path.read_text())
        return data

    def latest(self, origin: str) -> str | None:
        """The newest checkpoint cosigned for ``origin``, with its cosignature."""
        entry = self._state().get(origin)
        return None if entry is None else str(entry["note"])

    async def add_checkpoint(self, request: str) -> Answer:  # noqa: PLR0911  (one per rule)
        """Cosign the submitted checkpoint if it extends the newest one cosigned."""
        try:
            old, proof, note = _parse_request(request)
            body = _body_of(note)
            head = Head.of(body)
        except (ValueError, notes.NoteError) as exc:
            return Answer(400, f"{exc}\n")
        log = self._logs.get(head.origin)
        if log is None:
            return Answer(404, "this witness does not know that log\n")
        try:
            notes.open_note(note, *log)
        except notes.NoteError:
            return Answer(403, "no signature by the log's key verifies\n")
        if old > head.size:
            return Answer(400, "the old size is larger than the checkpoint's\n")
        async with self._lock:
            state = self._state()
            mine = state.get(head.origin)
            size = int(mine["size"]) if mine else 0
            if old != size:
                return Answer(409, f"{size}\n", SIZE_TYPE)
            if mine is not None:
                known = base64.b64decode(str(mine["root"]))
                if old == head.size and known != head.root:
                    return Answer(409, f"{size}\n", SIZE_TYPE)
                if old < head.size:
                    try:
                        merkle.verify_consistency(old, head.size, known, head.root, proof)
                    except merkle.ProofError:
                        return Answer(422, "the consistency proof does not verify\n")
            elif proof:
                return Answer(422, "the proof from size 0 is empty\n")
            line = cosign(body, self.name, self._key, int(time.time()))
            state[head.origin] = {
                "size": head.size,
                "root": base64.b64encode(head.root).decode(),
                "note": note + line,
            }
            # Persisted before it answers: a cosigned size never rolls back.
            write_private(self._state_path, json.dumps(state, indent=2).encode())
        return Answer(200, line)


def _parse_request(request: str) -> tuple[int, list[bytes], str]:
    head, sep, note = request.partition("\n\n")
    if not sep:
        raise ValueError("the body is an old size line, proof lines, a blank line, a checkpoint")
    lines = head.split("\n")
    first = lines[0]
    if not first.startswith("old ") or not first[4:].isdigit() or first[4:] != str(int(first[4:])):
        raise ValueError("the first line is 'old <size>'")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise ValueError(f"at most {MAX_PROOF_LINES} proof lines")
    proof = [base64.b64decode(line, validate=True) for line in lines[1:]]
    if any(len(p) != 32 for p in proof):
        raise ValueError("a proof line is not a 32-byte hash")
    return int(first[4:]), proof, note


def request_body(old_size: int, proof: list[bytes], note: str) -> str:
    """What a log sends to ``add-checkpoint``."""
    lines = [f"old {old_size}", *(base64.b64encode(p).decode() for p in proof)]
    return "\n".join(lines) + "\n\n" + note
