"""RFC 9497 OPRF and VOPRF with ristretto255-SHA512, on libsodium (through ``rbcl``).

Pure functions, no I/O. The ledger runs ``blind_evaluate`` (VOPRF mode, 0x01): one
DLEQ proof covers a whole batch. A member's SDK runs ``blind`` and ``finalize``, which
checks the proof against the ledger's published key before it unblinds.

Why ``rbcl``: it bundles its own libsodium build in the wheel, so the ristretto255
functions are there on every machine that can install the package, with no system
library to match; ``pysodium`` loads whatever libsodium the system has (older
distributions ship versions without ristretto255). PyNaCl does not expose these
functions at all.

Scalars are 32 bytes little-endian, elements 32-byte ristretto255 encodings (RFC 9496).
A received element that is not a canonical encoding, or is the identity, is refused
(``InvalidElement``): RFC 9497 §4.1's DeserializeElement.

The tests reproduce RFC 9497 Appendix A.1.1 and A.1.2 exactly, the batched proof
included.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

import rbcl

from refund_ledger_client.errors import LedgerError

OPRF = 0x00
VOPRF = 0x01

ELEMENT_BYTES = 32
SCALAR_BYTES = 32
PROOF_BYTES = 2 * SCALAR_BYTES
OUTPUT_BYTES = 64
_IDENTITY = bytes(ELEMENT_BYTES)
_HASH_BYTES = 64  # SHA-512
_BLOCK_BYTES = 128  # SHA-512's input block


class InvalidElement(ValueError):
    """Bytes that are not a valid, non-identity ristretto255 element."""


class InvalidProof(LedgerError, ValueError):
    """The evaluation's proof does not verify against the key: do not use the output."""


class DeriveKeyPairError(ValueError):
    """DeriveKeyPair found no non-zero scalar (probability about 2^-64000)."""


def _i2osp(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")


def _framed(data: bytes) -> bytes:
    return _i2osp(len(data), 2) + data


def context_string(mode: int) -> bytes:
    return b"OPRFV1-" + _i2osp(mode, 1) + b"-ristretto255-SHA512"


def expand_message_xmd(msg: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 §5.3.1 with SHA-512."""
    if len(dst) > 255:
        raise ValueError("a domain separation tag is at most 255 bytes")
    blocks = -(-length // _HASH_BYTES)
    if blocks > 255 or length > 65535:
        raise ValueError("expand_message_xmd cannot produce that many bytes")
    dst_prime = dst + _i2osp(len(dst), 1)
    b0 = hashlib.sha512(
        bytes(_BLOCK_BYTES) + msg + _i2osp(length, 2) + b"\x00" + dst_prime
    ).digest()
    out = b = hashlib.sha512(b0 + b"\x01" + dst_prime).digest()
    for i in range(2, blocks + 1):
        b = hashlib.sha512(
            bytes(x ^ y for x, y in zip(b0, b, strict=True)) + _i2osp(i, 1) + dst_prime
        ).digest()
        out += b
    return out[:length]


def _reduce(wide: bytes) -> bytes:
    return bytes(rbcl.crypto_core_ristretto255_scalar_reduce(wide))


def _is_zero(scalar: bytes) -> bool:
    return hmac.compare_digest(scalar, bytes(SCALAR_BYTES))


def _mult(scalar: bytes, element: bytes) -> bytes:
    return bytes(rbcl.crypto_scalarmult_ristretto255(scalar, element))


def _mult_base(scalar: bytes) -> bytes:
    return bytes(rbcl.crypto_scalarmult_ristretto255_base(scalar))


def _add(p: bytes, q: bytes) -> bytes:
    return bytes(rbcl.crypto_core_ristretto255_add(p, q))


def deserialize_element(data: bytes) -> bytes:
    """The element, if ``data`` is a canonical, non-identity ristretto255 encoding."""
    if (
        not isinstance(data, bytes | bytearray)
        or len(data) != ELEMENT_BYTES
        or hmac.compare_digest(bytes(data), _IDENTITY)
        or not rbcl.crypto_core_ristretto255_is_valid_point(bytes(data))
    ):
        raise InvalidElement("not a valid ristretto255 element")
    return bytes(data)


def deserialize_scalar(data: bytes) -> bytes:
    """The scalar, if ``data`` is a canonical (reduced) 32-byte encoding."""
    if len(data) != SCALAR_BYTES or _reduce(bytes(data) + bytes(32)) != bytes(data):
        raise ValueError("not a canonical ristretto255 scalar")
    return bytes(data)


@dataclass(frozen=True, slots=True)
class Suite:
    """ristretto255-SHA512 in one mode: the domain separation tags it uses."""

    mode: int

    @property
    def context(self) -> bytes:
        return context_string(self.mode)

    def hash_to_group(self, msg: bytes) -> bytes:
        wide = expand_message_xmd(msg, b"HashToGroup-" + self.context, _HASH_BYTES)
        return bytes(rbcl.crypto_core_ristretto255_from_hash(wide))

    def hash_to_scalar(self, msg: bytes, dst: bytes | None = None) -> bytes:
        tag = b"HashToScalar-" + self.context if dst is None else dst
        return _reduce(expand_message_xmd(msg, tag, _HASH_BYTES))

    # --- keys -------------------------------------------------------------------------

    def derive_key_pair(self, seed: bytes, info: bytes) -> tuple[bytes, bytes]:
        """RFC 9497 §3.2.1: (skS, pkS) from a 32-byte seed and public key info."""
        if len(seed) != 32:
            raise ValueError("the seed is 32 bytes")
        derive_input = seed + _framed(info)
        for counter in range(256):
            secret = self.hash_to_scalar(
                derive_input + _i2osp(counter, 1), b"DeriveKeyPair" + self.context
            )
            if not _is_zero(secret):
                return secret, _mult_base(secret)
        raise DeriveKeyPairError("no key could be derived from this seed")

    def public_key(self, secret: bytes) -> bytes:
        return _mult_base(secret)

    # --- client -----------------------------------------------------------------------

    def blind(self, msg: bytes, blind: bytes | None = None) -> tuple[bytes, bytes]:
        """(blind, blindedElement) for ``msg``; ``blind`` is random unless given."""
        r = bytes(rbcl.crypto_core_ristretto255_scalar_random()) if blind is None else blind
        element = self.hash_to_group(msg)
        if hmac.compare_digest(element, _IDENTITY):  # pragma: no cover  (probability ~2^-252)
            raise InvalidElement("the input maps to the identity")
        return r, _mult(r, element)

    def finalize(
        self,
        msg: bytes,
        blind: bytes,
        evaluated: bytes,
        *,
        blinded: bytes | None = None,
        public_key: bytes | None = None,
        proof: bytes | None = None,
    ) -> bytes:
        """The 64-byte PRF output. In VOPRF mode, call ``finalize_batch`` (it checks the
        proof over the whole batch) or pass ``blinded``, ``public_key`` and ``proof``."""
        if self.mode == VOPRF:
            if blinded is None or public_key is None or proof is None:
                raise ValueError("VOPRF finalization needs the blinded element, key and proof")
            return self.finalize_batch(
                [msg], [blind], [blinded], [evaluated], public_key=public_key, proof=proof
            )[0]
        return self._output(msg, blind, deserialize_element(evaluated))

    def finalize_batch(
        self,
        msgs: Sequence[bytes],
        blinds: Sequence[bytes],
        blinded: Sequence[bytes],
        evaluated: Sequence[bytes],
        *,
        public_key: bytes,
        proof: bytes,
    ) -> list[bytes]:
        """VOPRF: verify the batch's one proof against ``public_key``, then finalize
        each. Raises ``InvalidProof`` (and returns nothing) if it does not verify."""
        if not (len(msgs) == len(blinds) == len(blinded) == len(evaluated)) or not msgs:
            raise ValueError("one blind, blinded and evaluated element per input")
        checked = [deserialize_element(e) for e in evaluated]
        if not self.verify_proof(
            public_key, [deserialize_element(b) for b in blinded], checked, proof
        ):
            raise InvalidProof("the evaluation's proof does not verify against the key")
        return [self._output(m, r, e) for m, r, e in zip(msgs, blinds, checked, strict=True)]

    def _output(self, msg: bytes, blind: bytes, evaluated: bytes) -> bytes:
        inverse = bytes(rbcl.crypto_core_ristretto255_scalar_invert(blind))
        unblinded = _mult(inverse, evaluated)
        return hashlib.sha512(_framed(msg) + _framed(unblinded) + b"Finalize").digest()

    # --- server -----------------------------------------------------------------------

    def blind_evaluate(
        self, secret: bytes, blinded: Sequence[bytes], *, proof_scalar: bytes | None = None
    ) -> tuple[list[bytes], bytes | None]:
        """Evaluate each blinded element; in VOPRF mode, with one proof for the batch.

        Elements must already be deserialized (``deserialize_element``)."""
        evaluated = [_mult(secret, b) for b in blinded]
        if self.mode == OPRF:
            return evaluated, None
        r = (
            bytes(rbcl.crypto_core_ristretto255_scalar_random())
            if proof_scalar is None
            else proof_scalar
        )
        return evaluated, self._prove(secret, _mult_base(secret), blinded, evaluated, r)

    # --- the DLEQ proof (RFC 9497 §2.2) -------------------------------------------------

    def _composites(
        self, public_key: bytes, c: Sequence[bytes], d: Sequence[bytes], secret: bytes | None
    ) -> tuple[bytes, bytes]:
        seed_dst = b"Seed-" + self.context
        seed = hashlib.sha512(_framed(public_key) + _framed(seed_dst)).digest()
        m: bytes | None = None
        z: bytes | None = None
        for i, (ci, di) in enumerate(zip(c, d, strict=True)):
            weight = self.hash_to_scalar(
                _framed(seed) + _i2osp(i, 2) + _framed(ci) + _framed(di) + b"Composite"
            )
            term = _mult(weight, ci)
            m = term if m is None else _add(m, term)
            if secret is None:
                zterm = _mult(weight, di)
                z = zterm if z is None else _add(z, zterm)
        assert m is not None
        if secret is not None:
            z = _mult(secret, m)  # ComputeCompositesFast: the server knows k
        assert z is not None
        return m, z

    def _challenge(self, b: bytes, m: bytes, z: bytes, t2: bytes, t3: bytes) -> bytes:
        transcript = b"".join(_framed(x) for x in (b, m, z, t2, t3)) + b"Challenge"
        return self.hash_to_scalar(transcript)

    def _prove(
        self, secret: bytes, public_key: bytes, c: Sequence[bytes], d: Sequence[bytes], r: bytes
    ) -> bytes:
        m, z = self._composites(public_key, c, d, secret)
        t2 = _mult_base(r)
        t3 = _mult(r, m)
        challenge = self._challenge(public_key, m, z, t2, t3)
        s = bytes(
            rbcl.crypto_core_ristretto255_scalar_sub(
                r, rbcl.crypto_core_ristretto255_scalar_mul(challenge, secret)
            )
        )
        return challenge + s

    def verify_proof(
        self, public_key: bytes, c: Sequence[bytes], d: Sequence[bytes], proof: bytes
    ) -> bool:
        if len(proof) != PROOF_BYTES or not c or len(c) != len(d):
            return False
        try:
            challenge = deserialize_scalar(proof[:SCALAR_BYTES])
            s = deserialize_scalar(proof[SCALAR_BYTES:])
            key = deserialize_element(public_key)
        except ValueError:
            return False
        m, z = self._composites(key, c, d, None)
        t2 = _lin(s, None, challenge, key)
        t3 = _lin(s, m, challenge, z)
        if t2 is None or t3 is None:
            return False
        return hmac.compare_digest(self._challenge(key, m, z, t2, t3), challenge)


def _lin(s: bytes, a: bytes | None, c: bytes, b: bytes) -> bytes | None:
    """s*A + c*B (A the generator when None); None if a term is the identity, which an
    honest proof never gives (its scalars are uniformly random)."""
    try:
        left = _mult_base(s) if a is None else _mult(s, a)
        return _add(left, _mult(c, b))
    except RuntimeError:  # libsodium refuses a product that is the identity
        return None


def output_to_pseudonym(output: bytes) -> str:
    """The pseudonym: the first 32 bytes of the output, base64url without padding."""
    return base64.urlsafe_b64encode(output[:32]).rstrip(b"=").decode("ascii")
