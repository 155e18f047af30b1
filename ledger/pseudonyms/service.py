"""Evaluating members' blinded elements: decode, count against the member's limit,
evaluate with one proof for the batch.

The ledger never sees a buyer identifier here, only blinded elements: uniformly random
group elements that say nothing about the input. What it records is how many elements a
member had evaluated, never the elements themselves.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.errors import InvalidInput
from ledger.pseudonyms.keys import SUITE, PseudonymKey
from ledger.pseudonyms.voprf import InvalidElement, deserialize_element

MAX_ELEMENTS = 100
# Evaluating a whole batch takes milliseconds of libsodium time, which releases the GIL:
# batches this size or larger go to a worker thread so the event loop keeps serving.
THREAD_FROM = 8


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not text or len(text) > 64 or "=" in text:
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_elements(values: Sequence[str], *, field: str = "blinded_elements") -> list[bytes]:
    """The elements, or one error naming every element that is not a valid encoding."""
    if not 1 <= len(values) <= MAX_ELEMENTS:
        raise InvalidInput(f"send 1 to {MAX_ELEMENTS} blinded elements", fields=(field,))
    elements: list[bytes] = []
    bad: list[str] = []
    for index, value in enumerate(values):
        try:
            elements.append(deserialize_element(b64url_decode(value)))
        except (ValueError, binascii.Error, InvalidElement):
            bad.append(f"{field}.{index}")
    if bad:
        raise InvalidInput(
            "each blinded element is a ristretto255 element (32 bytes, not the identity) "
            "in base64url without padding, as the SDK's blind() makes it",
            fields=bad,
        )
    return elements


@dataclass(frozen=True, slots=True)
class Evaluation:
    evaluated: list[bytes]
    proof: bytes
    key_id: str


def _evaluate(key: PseudonymKey, elements: list[bytes]) -> Evaluation:
    evaluated, proof = SUITE.blind_evaluate(key.secret_key, elements)
    assert proof is not None  # VOPRF mode always proves
    return Evaluation(evaluated=evaluated, proof=proof, key_id=key.key_id)


async def evaluate(key: PseudonymKey, elements: list[bytes]) -> Evaluation:
    """BlindEvaluate the batch: one evaluated element each, one DLEQ proof for all."""
    if len(elements) >= THREAD_FROM:
        return await asyncio.to_thread(_evaluate, key, elements)
    return _evaluate(key, elements)
