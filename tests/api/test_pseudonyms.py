"""Pseudonym evaluation through HTTP: a real VOPRF exchange against the ledger's key,
limits counted per element, audited as counts, the key published."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import os
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from refund_ledger_client.identifiers import oprf_input
from refund_ledger_client.voprf import VOPRF, InvalidProof, Suite, output_to_pseudonym
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Scope
from ledger.audit.models import AuditEventRow
from ledger.pseudonyms import keys as pseudonym_keys
from ledger.pseudonyms.limits import EvaluationLimiter
from ledger.runtime import Runtime
from tests.api.test_reports import Member, member
from tests.factories import bearer, get_token, make_credential

SUITE = Suite(VOPRF)
KEY_PATH = "/.well-known/refund-ledger/pseudonym-key"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def published_key(client: httpx.AsyncClient) -> bytes:
    response = await client.get(KEY_PATH)
    assert response.status_code == 200
    return unb64(response.json()["public_key"])


async def pseudonymize(acme: Member, key: bytes, *inputs: bytes) -> list[str]:
    blinds, blinded = zip(*(SUITE.blind(x) for x in inputs), strict=True)
    response = await acme.post(
        "/v1/pseudonyms:evaluate", {"blinded_elements": [b64(b) for b in blinded]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    outputs = SUITE.finalize_batch(
        list(inputs),
        list(blinds),
        list(blinded),
        [unb64(e) for e in body["evaluated_elements"]],
        public_key=key,
        proof=unb64(body["proof"]),
    )
    return [output_to_pseudonym(o) for o in outputs]


async def test_a_member_gets_a_verified_stable_pseudonym(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, acme: Member
) -> None:
    key = await published_key(client)
    # The SDK's normalization makes the inputs, as a member's code would.
    phone = oprf_input("phone", "138 0013 8000")
    email = oprf_input("email", " Buyer@Example.com")
    first = await pseudonymize(acme, key, phone, email)
    # Fresh blinds every time, another member: the same pseudonyms (cross-platform).
    other = await member(client, session, runtime)
    again = await pseudonymize(other, key, oprf_input("phone", "+8613800138000"), email)
    assert first == again
    assert first[0] != first[1]
    assert all(len(p) == 43 for p in first)
    # The pseudonym is what the ledger's key gives: the server's own unblinded PRF.
    secret = runtime.pseudonym_key.secret_key
    blind, blinded = SUITE.blind(phone)
    evaluated, _ = SUITE.blind_evaluate(secret, [blinded])
    direct = Suite(0).finalize(phone, blind, evaluated[0])
    assert output_to_pseudonym(direct) == first[0]


async def test_the_published_key_is_the_one_that_evaluates(
    client: httpx.AsyncClient, runtime: Runtime, acme: Member
) -> None:
    response = await client.get(KEY_PATH)
    body = response.json()
    assert body["suite"] == "ristretto255-SHA512"
    assert body["key_id"] == runtime.pseudonym_key.key_id
    assert "public" in response.headers["cache-control"]
    # A proof checked against a different key is refused by the SDK's finalize.
    _, wrong = SUITE.derive_key_pair(os.urandom(32), b"someone else")
    with pytest.raises(InvalidProof):
        await pseudonymize(acme, wrong, oprf_input("phone", "13800138000"))


@pytest.mark.parametrize(
    ("elements", "field"),
    [
        ([b64(bytes(32))], "blinded_elements.0"),  # the identity
        (["not base64!"], "blinded_elements.0"),
        ([b64(os.urandom(16))], "blinded_elements.0"),
        (
            [b64(SUITE.blind(b"x")[1]), b64(bytes.fromhex("ec" + "ff" * 30 + "7f"))],
            "blinded_elements.1",
        ),
    ],
)
async def test_an_invalid_element_is_named_not_echoed_and_nothing_is_counted(
    acme: Member, runtime: Runtime, elements: list[str], field: str
) -> None:
    response = await acme.post("/v1/pseudonyms:evaluate", {"blinded_elements": elements})
    assert response.status_code == 422
    problem = response.json()
    assert [e["field"] for e in problem["errors"]] == [field]
    for element in elements:
        assert element not in response.text
    member_id = acme.credential.member.id
    stats = await runtime.evaluation_limiter.take(member_id, 0)
    assert stats.quota.remaining == runtime.evaluation_limiter.limits_for(member_id)[0].amount


@pytest.mark.parametrize("count", [0, 101])
async def test_a_batch_is_1_to_100_elements(acme: Member, count: int) -> None:
    elements = [b64(SUITE.blind(b"x")[1])] * count
    response = await acme.post("/v1/pseudonyms:evaluate", {"blinded_elements": elements})
    assert response.status_code == 422


async def test_the_limit_counts_elements_and_says_when_to_return(
    acme: Member, runtime: Runtime
) -> None:
    runtime.evaluation_limiter = EvaluationLimiter("5/hour", {}, limiter=runtime.limiter)
    blinded = [b64(SUITE.blind(bytes([n]))[1]) for n in range(3)]
    ok = await acme.post("/v1/pseudonyms:evaluate", {"blinded_elements": blinded})
    assert ok.status_code == 200
    assert ok.headers["ratelimit-policy"] == '"pseudonym-evaluations";q=5;w=3600'
    assert ok.headers["ratelimit"].startswith('"pseudonym-evaluations";r=2;')
    refused = await acme.post("/v1/pseudonyms:evaluate", {"blinded_elements": blinded})
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["type"] == "/problems/rate-limited"
    # Two fit, and the refusal above counted nothing.
    assert (
        await acme.post("/v1/pseudonyms:evaluate", {"blinded_elements": blinded[:2]})
    ).status_code == 200


async def test_limits_are_per_member_and_configurable_per_member(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, acme: Member
) -> None:
    big = await member(client, session, runtime)
    runtime.evaluation_limiter = EvaluationLimiter(
        "1/hour", {str(big.credential.member.id): "10/hour"}, limiter=runtime.limiter
    )
    two = [b64(SUITE.blind(bytes([n]))[1]) for n in range(2)]
    assert (
        await acme.post("/v1/pseudonyms:evaluate", {"blinded_elements": two})
    ).status_code == 429
    assert (await big.post("/v1/pseudonyms:evaluate", {"blinded_elements": two})).status_code == 200


async def test_evaluations_are_audited_as_counts_never_elements(
    acme: Member, runtime: Runtime
) -> None:
    blinded = [b64(SUITE.blind(bytes([n]))[1]) for n in range(4)]
    assert (
        await acme.post("/v1/pseudonyms:evaluate", {"blinded_elements": blinded})
    ).status_code == 200
    async with runtime.read_sessionmaker() as read:
        rows = list(
            await read.scalars(
                sa.select(AuditEventRow).where(AuditEventRow.tag == "pseudonym:elements:evaluated")
            )
        )
    assert len(rows) == 1
    assert json.loads(rows[0].body) == {"elements": 4, "key_id": runtime.pseudonym_key.key_id}
    assert rows[0].subject is None
    for element in blinded:
        assert element not in rows[0].body


async def test_evaluation_needs_its_scope(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    credential = await make_credential(session, runtime, scopes=frozenset({Scope.RISK_READ}))
    token = await get_token(client, credential)
    response = await client.post(
        "/v1/pseudonyms:evaluate",
        json={"blinded_elements": [b64(SUITE.blind(b"x")[1])]},
        headers=bearer(token),
    )
    assert response.status_code == 403
    assert "pseudonyms:evaluate" in response.headers["www-authenticate"]


def test_the_key_file_is_private_and_checked(tmp_path: Path) -> None:
    directory = tmp_path / "pseudonym"
    now = dt.datetime.now(dt.UTC)
    assert pseudonym_keys.ensure_key(directory, now=now) is True
    assert pseudonym_keys.ensure_key(directory, now=now) is False  # kept, never replaced
    path = directory / pseudonym_keys.KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert directory.stat().st_mode & 0o777 == 0o700
    key = pseudonym_keys.load_key(directory)
    document = json.loads(path.read_text())
    document["key_id"] = "not-the-id"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="wrong key id"):
        pseudonym_keys.load_key(directory)
    assert dataclasses.asdict(key)["public_key"] == SUITE.public_key(key.secret_key)
