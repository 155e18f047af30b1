"""Signing keys: RFC 8037 vectors, 0600 files, rotation and retirement."""

from __future__ import annotations

import base64
import datetime as dt
import stat
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.access import keys
from ledger.errors import InvalidInput, NotFound

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)

# RFC 8037 Appendix A.1 (the RFC 8032 §7.1 TEST 1 key), A.3 thumbprint, A.4 signature.
RFC8037_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
RFC8037_SIGNING_INPUT = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
RFC8037_SIGNATURE = (
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)


def test_rfc8037_jwk_and_thumbprint() -> None:
    private = Ed25519PrivateKey.from_private_bytes(RFC8037_SEED)
    key = keys.SigningKey(kid="x", private_key=private, created_at=NOW, retired_at=None)
    assert key.public_jwk()["x"] == RFC8037_X
    assert keys.jwk_thumbprint(private.public_key()) == RFC8037_THUMBPRINT


def test_rfc8037_eddsa_signature_verifies_with_our_verifier() -> None:
    private = Ed25519PrivateKey.from_private_bytes(RFC8037_SEED)
    signature = private.sign(RFC8037_SIGNING_INPUT.encode("ascii"))
    assert keys.b64url(signature) == RFC8037_SIGNATURE
    token = f"{RFC8037_SIGNING_INPUT}.{RFC8037_SIGNATURE}"
    # The JWS library we verify tokens with accepts the RFC's compact serialization.
    payload = jwt.api_jws.decode(token, private.public_key(), algorithms=["EdDSA"])
    assert payload == b"Example of Ed25519 signing"
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "AB")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.api_jws.decode(tampered, private.public_key(), algorithms=["EdDSA"])


def test_a_new_ring_is_private_to_its_owner(tmp_path: Path) -> None:
    ring = tmp_path / "keys" / "token"
    assert keys.ensure_ring(ring, now=NOW) is True
    assert keys.ensure_ring(ring, now=NOW) is False  # kept, not replaced
    assert stat.S_IMODE(ring.stat().st_mode) == 0o700
    files = list(ring.iterdir())
    assert {f.suffix for f in files} == {".pem", ".json"}
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f.name
    (loaded,) = keys.KeyRing.load(ring).keys
    assert loaded.kid == keys.jwk_thumbprint(loaded.public_key)


def test_rotation_signs_with_the_new_key_and_verifies_with_both(tmp_path: Path) -> None:
    ring_dir = tmp_path / "token"
    keys.ensure_ring(ring_dir, now=NOW)
    first = keys.KeyRing.load(ring_dir).signing_key
    second = keys.rotate(ring_dir, now=NOW + dt.timedelta(days=1))
    ring = keys.KeyRing.load(ring_dir)
    assert ring.signing_key.kid == second.kid != first.kid
    assert ring.verification_key(first.kid) is not None
    assert [k["kid"] for k in ring.jwks()["keys"]] == [first.kid, second.kid]


def test_retired_keys_stop_verifying_and_the_last_key_stays(tmp_path: Path) -> None:
    ring_dir = tmp_path / "token"
    keys.ensure_ring(ring_dir, now=NOW)
    first = keys.KeyRing.load(ring_dir).signing_key
    with pytest.raises(InvalidInput):
        keys.retire(ring_dir, first.kid, now=NOW)
    keys.rotate(ring_dir, now=NOW)
    keys.retire(ring_dir, first.kid, now=NOW)
    ring = keys.KeyRing.load(ring_dir)
    assert ring.verification_key(first.kid) is None
    with pytest.raises(NotFound):
        keys.retire(ring_dir, "no-such-kid", now=NOW)


def test_a_source_notices_rotation_on_disk(tmp_path: Path) -> None:
    ring_dir = tmp_path / "token"
    keys.ensure_ring(ring_dir, now=NOW)
    source = keys.KeyRingSource(ring_dir, check_interval=0.0)
    before = source.current().signing_key.kid
    rotated = keys.rotate(ring_dir, now=NOW)
    assert source.current().signing_key.kid == rotated.kid != before


def test_loading_a_missing_ring_says_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="ledger init"):
        keys.KeyRing.load(tmp_path / "nothing")


def test_b64url_has_no_padding() -> None:
    assert keys.b64url(b"\xff") == "_w"
    assert base64.urlsafe_b64decode(keys.b64url(b"abcd") + "==") == b"abcd"
