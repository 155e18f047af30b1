"""Bearer-token checks on protected routes (RFC 6750, RFC 8725)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import authorize
from ledger.access import keys
from ledger.access.permissions import Permission, Scope
from ledger.access.principals import ClientPrincipal
from ledger.clock import FrozenClock
from ledger.members import service as members
from ledger.members.models import MemberStatus
from ledger.runtime import Runtime
from tests.factories import Credential, access_change, bearer, get_token, make_credential, op

RiskReader = Annotated[ClientPrincipal, Depends(authorize(Permission.RISK_READ))]


@pytest.fixture
async def credential(session: AsyncSession, runtime: Runtime) -> Credential:
    return await make_credential(session, runtime)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(credential: Credential, clock: FrozenClock, **overrides: Any) -> dict[str, Any]:
    now = int(clock.now().timestamp())
    claims: dict[str, Any] = {
        "iss": "http://testserver",
        "aud": "refund-ledger",
        "sub": credential.client_id,
        "client_id": credential.client_id,
        "member_id": str(credential.member.id),
        "scope": "risk:read",
        "jti": "test-token-id-0001",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _mint(runtime: Runtime, claims: dict[str, Any], **header: Any) -> str:
    key = runtime.token_keys.current().signing_key
    headers = {"typ": "at+jwt", "kid": key.kid, **header}
    return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers=headers)


def _assert_invalid_token(response: httpx.Response, fragment: str = "") -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    body = response.json()
    assert body["type"] == "/problems/invalid-token"
    assert fragment in body["detail"]


async def test_a_minted_token_with_the_right_claims_is_accepted(
    client: httpx.AsyncClient, credential: Credential, runtime: Runtime, clock: FrozenClock
) -> None:
    # The forging helper itself works, so the refusals below are about the one change.
    token = _mint(runtime, _claims(credential, clock))
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200


async def test_expired_token_is_refused(
    client: httpx.AsyncClient, credential: Credential, clock: FrozenClock
) -> None:
    token = await get_token(client, credential)
    clock.advance(dt.timedelta(seconds=600 + 29))  # within the 30 s leeway
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
    clock.advance(dt.timedelta(seconds=2))
    _assert_invalid_token(await client.get("/v1/me", headers=bearer(token)), "expired")


async def test_token_not_yet_valid_is_refused(
    client: httpx.AsyncClient, credential: Credential, runtime: Runtime, clock: FrozenClock
) -> None:
    later = int(clock.now().timestamp()) + 3600
    token = _mint(runtime, _claims(credential, clock, nbf=later, iat=later, exp=later + 600))
    _assert_invalid_token(await client.get("/v1/me", headers=bearer(token)), "not valid yet")


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"aud": "someone-else"}, "aud"),
        ({"iss": "https://evil.example"}, "iss"),
        ({"exp": None}, "exp"),
        ({"jti": None}, "jti"),
        ({"sub": "cl_other"}, "disagree"),
        ({"scope": "risk:read admin:all"}, "malformed"),
        ({"member_id": "not-a-uuid"}, "malformed"),
    ],
)
async def test_tokens_with_wrong_claims_are_refused(
    client: httpx.AsyncClient,
    credential: Credential,
    runtime: Runtime,
    clock: FrozenClock,
    override: dict[str, Any],
    fragment: str,
) -> None:
    token = _mint(runtime, _claims(credential, clock, **override))
    _assert_invalid_token(await client.get("/v1/me", headers=bearer(token)), fragment)


async def test_wrong_typ_is_refused(
    client: httpx.AsyncClient, credential: Credential, runtime: Runtime, clock: FrozenClock
) -> None:
    # An ID token or other JWT signed by the same key must not pass as an access token.
    token = _mint(runtime, _claims(credential, clock), typ="JWT")
    _assert_invalid_token(await client.get("/v1/me", headers=bearer(token)), "typ")


async def test_alg_none_is_refused(
    client: httpx.AsyncClient, credential: Credential, runtime: Runtime, clock: FrozenClock
) -> None:
    kid = runtime.token_keys.current().signing_key.kid
    header = _b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": kid}).encode())
    payload = _b64(json.dumps(_claims(credential, clock)).encode())
    token = f"{header}.{payload}."
    _assert_invalid_token(await client.get("/v1/me", headers=bearer(token)), "EdDSA")


async def test_hs256_signed_with_the_public_key_is_refused(
    client: httpx.AsyncClient, credential: Credential, runtime: Runtime, clock: FrozenClock
) -> None:
    # Algorithm confusion: HMAC keyed with the published public key.
    signing = runtime.token_keys.current().signing_key
    public_pem = signing.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": signing.kid}).encode())
    payload = _b64(json.dumps(_claims(credential, clock)).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{_b64(signature)}"
    _assert_invalid_token(await client.get("/v1/me", headers=bearer(token)), "EdDSA")


async def test_unknown_kid_is_refused(
    client: httpx.AsyncClient, credential: Credential, clock: FrozenClock
) -> None:
    stranger = Ed25519PrivateKey.generate()
    token = jwt.encode(
        _claims(credential, clock),
        stranger,
        algorithm="EdDSA",
        headers={"typ": "at+jwt", "kid": keys.jwk_thumbprint(stranger.public_key())},
    )
    _assert_invalid_token(await client.get("/v1/me", headers=bearer(token)), "unknown")


async def test_a_known_kid_with_a_foreign_signature_is_refused(
    client: httpx.AsyncClient, credential: Credential, runtime: Runtime, clock: FrozenClock
) -> None:
    stranger = Ed25519PrivateKey.generate()
    kid = runtime.token_keys.current().signing_key.kid
    token = jwt.encode(
        _claims(credential, clock),
        stranger,
        algorithm="EdDSA",
        headers={"typ": "at+jwt", "kid": kid},
    )
    _assert_invalid_token(await client.get("/v1/me", headers=bearer(token)), "signature")


async def test_a_tampered_payload_is_refused(
    client: httpx.AsyncClient, credential: Credential
) -> None:
    token = await get_token(client, credential, scope="risk:read")
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = "risk:read reports:write"
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    _assert_invalid_token(await client.get("/v1/me", headers=bearer(forged)), "signature")


async def test_rotation_keeps_old_tokens_until_the_old_key_is_retired(
    client: httpx.AsyncClient, credential: Credential, runtime: Runtime, clock: FrozenClock
) -> None:
    ring_dir = runtime.token_keys.directory
    old_token = await get_token(client, credential)
    old_kid = runtime.token_keys.current().signing_key.kid

    new_key = keys.rotate(ring_dir, now=clock.now())
    runtime.token_keys.refresh()
    new_token = await get_token(client, credential)
    assert jwt.get_unverified_header(new_token)["kid"] == new_key.kid
    assert (await client.get("/v1/me", headers=bearer(old_token))).status_code == 200
    assert (await client.get("/v1/me", headers=bearer(new_token))).status_code == 200

    keys.retire(ring_dir, old_kid, now=clock.now())
    runtime.token_keys.refresh()
    # The old token was verified (and cached) before; retirement still refuses it.
    _assert_invalid_token(await client.get("/v1/me", headers=bearer(old_token)), "retired")
    assert (await client.get("/v1/me", headers=bearer(new_token))).status_code == 200
    jwks = (await client.get("/.well-known/jwks.json")).json()
    assert [k["kid"] for k in jwks["keys"]] == [new_key.kid]


async def test_revoked_client_token_is_refused_at_once(
    client: httpx.AsyncClient, credential: Credential, session: AsyncSession, runtime: Runtime
) -> None:
    token = await get_token(client, credential)
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
    async with access_change(runtime):
        await members.revoke_client(session, op(runtime), credential.client_id)
        await session.commit()
    _assert_invalid_token(await client.get("/v1/me", headers=bearer(token)), "revoked")


async def test_suspended_member_token_is_refused_until_reinstated(
    client: httpx.AsyncClient, credential: Credential, session: AsyncSession, runtime: Runtime
) -> None:
    token = await get_token(client, credential)
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
    member_id = credential.member.id
    async with access_change(runtime):
        await members.set_member_status(session, op(runtime), member_id, MemberStatus.SUSPENDED)
        await session.commit()
    _assert_invalid_token(await client.get("/v1/me", headers=bearer(token)), "suspended")
    async with access_change(runtime):
        await members.set_member_status(session, op(runtime), member_id, MemberStatus.ACTIVE)
        await session.commit()
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200


async def test_token_of_another_member_claimed_for_a_client_is_refused(
    client: httpx.AsyncClient,
    credential: Credential,
    session: AsyncSession,
    runtime: Runtime,
    clock: FrozenClock,
) -> None:
    other = await make_credential(session, runtime)
    token = _mint(runtime, _claims(credential, clock, member_id=str(other.member.id)))
    _assert_invalid_token(await client.get("/v1/me", headers=bearer(token)), "unknown")


async def test_missing_authorization_is_a_bare_bearer_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/me")
    assert response.status_code == 401
    # RFC 6750 §3.1: no error code when the request carried no credentials.
    assert response.headers["www-authenticate"] == 'Bearer realm="refund-ledger"'
    assert response.json()["type"] == "/problems/unauthenticated"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "Bearer a b",
        b"Bearer ab\xc3\xa9",
        "Bearer " + "a" * 5000,
        "bearer",
    ],
)
async def test_malformed_authorization_headers_are_refused(
    client: httpx.AsyncClient, authorization: str | bytes
) -> None:
    value = authorization if isinstance(authorization, bytes) else authorization.encode()
    response = await client.get("/v1/me", headers={b"Authorization": value})
    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["www-authenticate"]
    assert response.json()["errors"][0]["field"] == "authorization"


@pytest.mark.parametrize("token", ["abc", "a.b.c", "e30.e30.e30", "x" * 200])
async def test_garbage_bearer_tokens_are_invalid_tokens(
    client: httpx.AsyncClient, token: str
) -> None:
    _assert_invalid_token(await client.get("/v1/me", headers=bearer(token)))


async def test_two_authorization_headers_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/me", headers=[("Authorization", "Bearer a"), ("Authorization", "Bearer b")]
    )
    assert response.status_code == 400


async def test_v1_me_describes_the_caller(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, clock: FrozenClock
) -> None:
    credential = await make_credential(
        session, runtime, scopes=frozenset({Scope.RISK_READ, Scope.REPORTS_WRITE}), label="prod"
    )
    token = await get_token(client, credential, scope="risk:read")
    body = (await client.get("/v1/me", headers=bearer(token))).json()
    assert body["member"] == {
        "id": str(credential.member.id),
        "name": credential.member.name,
        "display_name": credential.member.display_name,
        "status": "active",
    }
    assert body["client"]["client_id"] == credential.client_id
    assert body["client"]["label"] == "prod"
    assert body["client"]["scopes"] == ["reports:write", "risk:read"]
    assert body["token"]["scopes"] == ["risk:read"]
    expires = dt.datetime.fromisoformat(body["token"]["expires_at"])
    assert expires == clock.now() + dt.timedelta(seconds=600)


async def test_a_token_without_the_needed_scope_gets_403_insufficient_scope(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    # The scoped routes arrive with later capabilities; mount one guarded by the real
    # dependency to show how a missing scope is refused.
    @app.get("/v1/test-risk")
    async def risk(principal: RiskReader) -> dict[str, str]:
        return {"client_id": principal.client_id}

    credential = await make_credential(
        session, runtime, scopes=frozenset({Scope.RISK_READ, Scope.REPORTS_WRITE})
    )
    narrow = await get_token(client, credential, scope="reports:write")
    response = await client.get("/v1/test-risk", headers=bearer(narrow))
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="risk:read"' in challenge
    body = response.json()
    assert body["type"] == "/problems/insufficient-scope"
    assert body["required_scope"] == "risk:read"

    wide = await get_token(client, credential, scope="risk:read")
    allowed = await client.get("/v1/test-risk", headers=bearer(wide))
    assert allowed.status_code == 200
    assert allowed.json() == {"client_id": credential.client_id}


@pytest.mark.parametrize(
    "times",
    [
        {"exp": 253_402_300_800 + 1},  # after 9999-12-31: no datetime can hold it
        {"exp": 2**62},
        {"iat": -(2**62)},  # a lifetime measured in aeons
        {"exp_after_iat": 3600 * 24},  # longer than this ledger ever issues
        {"exp_after_iat": 0},
        {"iat": True},
        {"exp": 1.5e9},
    ],
)
async def test_a_signed_token_with_impossible_times_is_refused_not_a_500(
    client: httpx.AsyncClient,
    credential: Credential,
    runtime: Runtime,
    clock: FrozenClock,
    times: dict[str, Any],
) -> None:
    claims = _claims(credential, clock)
    times = dict(times)  # the parameter is shared by both backends' runs
    after = times.pop("exp_after_iat", None)
    claims.update(times)
    if after is not None:
        claims["exp"] = claims["iat"] + after
    token = _mint(runtime, claims)
    _assert_invalid_token(await client.get("/v1/me", headers=bearer(token)))
