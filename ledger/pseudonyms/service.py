"""Evaluating members' blinded elements: decode, count against the member's limit,
evaluate with one proof for the batch, record it (``evaluate_for``).

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

from refund_ledger_client.voprf import InvalidElement, deserialize_element

from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal, require
from ledger.audit.reads import Audited, Recorder
from ledger.audit.tags import Tag
from ledger.errors import InvalidInput, Quota, RateLimited
from ledger.pseudonyms.keys import SUITE, PseudonymKey
from ledger.pseudonyms.limits import EvaluationLimiter

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


@dataclass(frozen=True, slots=True)
class Evaluated:
    evaluation: Evaluation
    quota: Quota  # what is left of the member's limit, for the RateLimit headers


async def evaluate_for(
    rec: Recorder,
    principal: ClientPrincipal,
    blinded: Sequence[str],
    *,
    key: PseudonymKey,
    limiter: EvaluationLimiter,
) -> Audited[Evaluated]:
    """A member's evaluation, end to end: decode, take the elements from the member's
    limit, evaluate, record the count. A refusal (an invalid element, no room left) is
    recorded too, with the count and the reason; the elements never are."""
    require(principal, Permission.PSEUDONYMS_EVALUATE)
    count = len(blinded)
    try:
        elements = decode_elements(blinded)
    except InvalidInput as exc:
        await rec.refused(
            Tag.PSEUDONYMS_EVALUATED,
            elements=count,
            reason="invalid element",
            invalid=len(exc.fields),
        )
        raise
    decision = await limiter.take(principal.member_id, count)
    quota = decision.quota
    if not decision.allowed:
        await rec.refused(Tag.PSEUDONYMS_EVALUATED, elements=count, reason="rate limit")
        wait = max(1, quota.reset_seconds)
        raise RateLimited(
            f"your member's pseudonym evaluation limit ({quota.limit} per "
            f"{quota.window_seconds} s) has no room for {count} more; retry after {wait} s",
            retry_after=wait,
            quota=quota,
            limit="pseudonym_evaluations",
        )
    result = await evaluate(key, elements)
    event_id = await rec.record(
        Tag.PSEUDONYMS_EVALUATED, body={"elements": count, "key_id": result.key_id}
    )
    return Audited(Evaluated(result, quota), event_id)
