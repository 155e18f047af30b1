"""Ed25519 signing keys kept in a key directory, rotatable, with 0600 files.

Layout of one key ring (``<key_dir>/<purpose>/``, e.g. ``token``)::

    ring.json        [{"kid", "created_at", "retired_at"}...], oldest first, 0600
    <kid>.pem        the PKCS #8 private key, 0600

The newest key that is not retired signs; every key that is not retired verifies.
The key id is the RFC 7638 JWK thumbprint of the public key.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import InvalidInput, NotFound

RING_FILE = "ring.json"


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def jwk_thumbprint(public_key: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint of an OKP key (RFC 8037 §2: members crv, kty, x)."""
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": b64url(public_raw(public_key))},
        separators=(",", ":"),
        sort_keys=True,
    )
    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey
    created_at: dt.datetime
    retired_at: dt.datetime | None

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK (RFC 8037)."""
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url(public_raw(self.public_key)),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        }


class KeyRing:
    """A snapshot of one key ring on disk."""

    def __init__(self, keys: list[SigningKey]) -> None:
        self.keys = keys
        self._by_kid = {k.kid: k for k in keys}

    @classmethod
    def load(cls, directory: Path) -> KeyRing:
        ring = _read_ring(directory)
        keys = []
        for entry in ring:
            pem = (directory / f"{entry['kid']}.pem").read_bytes()
            private = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(private, Ed25519PrivateKey):
                raise InvalidInput(f"key {entry['kid']} is not an Ed25519 key")
            retired = entry.get("retired_at")
            keys.append(
                SigningKey(
                    kid=entry["kid"],
                    private_key=private,
                    created_at=dt.datetime.fromisoformat(entry["created_at"]),
                    retired_at=dt.datetime.fromisoformat(retired) if retired else None,
                )
            )
        return cls(keys)

    @property
    def active(self) -> list[SigningKey]:
        """Keys that still verify, oldest first."""
        return [k for k in self.keys if k.retired_at is None]

    @property
    def signing_key(self) -> SigningKey:
        """The newest key that is not retired."""
        active = self.active
        if not active:
            raise NotFound("no active signing key: run `ledger keys rotate`")
        return active[-1]

    def verifies(self, kid: str) -> bool:
        """Whether ``kid`` exists and is not retired (a cached token's check, on every
        request: deriving the public key each time cost a few microseconds)."""
        key = self._by_kid.get(kid)
        return key is not None and key.retired_at is None

    def verification_key(self, kid: str) -> Ed25519PublicKey | None:
        """The public key for ``kid`` if it exists and is not retired."""
        key = self._by_kid.get(kid)
        if key is None or key.retired_at is not None:
            return None
        return key.public_key

    def jwks(self) -> dict[str, Any]:
        """The JWK Set of keys that verify (RFC 7517 §5)."""
        return {"keys": [k.public_jwk() for k in self.active]}


class KeyRingSource:
    """A key ring that notices rotation on disk (checked at most once per interval)."""

    def __init__(self, directory: Path, *, check_interval: float = 1.0) -> None:
        self.directory = directory
        self._interval = check_interval
        self._checked = 0.0
        self._ring = KeyRing.load(directory)
        self._stamp = _stamp(directory)
        self._checked = time.monotonic()

    def current(self) -> KeyRing:
        now = time.monotonic()
        if now - self._checked >= self._interval:
            self._checked = now
            stamp = _stamp(self.directory)
            if stamp != self._stamp:
                self._ring = KeyRing.load(self.directory)
                self._stamp = stamp
        return self._ring

    def refresh(self) -> KeyRing:
        """Reload now (e.g. when a token names a key id not seen yet)."""
        self._checked = 0.0
        return self.current()


def ensure_ring(directory: Path, *, now: dt.datetime) -> bool:
    """Create the ring with one key if it does not exist yet; True if created."""
    if (directory / RING_FILE).exists():
        return False
    rotate(directory, now=now)
    return True


def rotate(directory: Path, *, now: dt.datetime) -> SigningKey:
    """Add a new key, which signs from now on; older keys keep verifying."""
    make_private_dir(directory)
    private = Ed25519PrivateKey.generate()
    kid = jwk_thumbprint(private.public_key())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private(directory / f"{kid}.pem", pem)
    ring = _read_ring(directory) if (directory / RING_FILE).exists() else []
    ring.append({"kid": kid, "created_at": now.isoformat(), "retired_at": None})
    _write_ring(directory, ring)
    return SigningKey(kid=kid, private_key=private, created_at=now, retired_at=None)


def retire(directory: Path, kid: str, *, now: dt.datetime) -> None:
    """Stop a key from verifying. The last active key cannot be retired."""
    ring = _read_ring(directory)
    entry = next((e for e in ring if e["kid"] == kid), None)
    if entry is None:
        raise NotFound(f"no key with id {kid!r}; `ledger keys list` shows them")
    if entry["retired_at"] is None:
        active = [e for e in ring if e["retired_at"] is None]
        if len(active) == 1:
            raise InvalidInput("cannot retire the only active key: rotate first")
        entry["retired_at"] = now.isoformat()
        _write_ring(directory, ring)


def _stamp(directory: Path) -> tuple[int, int]:
    # The ring file is replaced by rename, so a new inode also tells a change.
    stat = (directory / RING_FILE).stat()
    return (stat.st_ino, stat.st_mtime_ns)


def _read_ring(directory: Path) -> list[dict[str, Any]]:
    path = directory / RING_FILE
    if not path.exists():
        raise NotFound(f"no key ring in {directory.name!r}: run `ledger init`")
    data = json.loads(path.read_text("utf-8"))
    assert isinstance(data, list)
    return data


def _write_ring(directory: Path, ring: list[dict[str, Any]]) -> None:
    write_private(directory / RING_FILE, json.dumps(ring, indent=2).encode("utf-8"))


def make_private_dir(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)


def write_private(path: Path, data: bytes) -> None:
    """Write atomically, readable by the owner only from the first byte."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
