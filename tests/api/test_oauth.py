"""The token endpoint (RFC 6749 §4.4, errors per §5.2), JWKS and RFC 8414 metadata."""

from __future__ import annotations

import base64

import httpx
import jwt
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Scope
from ledger.access.secrets import SecretHasher
from ledger.config import Settings
from ledger.members import service as members
from ledger.members.models import Client, MemberStatus
from ledger.runtime import Runtime
from tests.factories import Credential, make_credential, op

GRANT = {"grant_type": "client_credentials"}


@pytest.fixture
async def credential(session: AsyncSession, runtime: Runtime) -> Credential:
    return await make_credential(
        session, runtime, scopes=frozenset({Scope.RISK_READ, Scope.REPORTS_WRITE})
    )


def _oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error
    assert body["error_description"]
    assert response.headers["cache-control"] == "no-store"


async def test_client_secret_basic_issues_an_rfc9068_access_token(
    client: httpx.AsyncClient, credential: Credential, runtime: Runtime
) -> None:
    response = await client.post(
        "/oauth/token", data=GRANT, auth=(credential.client_id, credential.secret)
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == "reports:write risk:read"

    token = body["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["typ"] == "at+jwt"
    assert header["kid"] == runtime.token_keys.current().signing_key.kid
    claims = jwt.decode(
        token,
        runtime.token_keys.current().signing_key.public_key,
        algorithms=["EdDSA"],
        audience="refund-ledger",
        issuer="http://testserver",
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["sub"] == claims["client_id"] == credential.client_id
    assert claims["member_id"] == str(credential.member.id)
    assert claims["exp"] - claims["iat"] == 600
    assert len(claims["jti"]) >= 16


async def test_client_secret_post_issues_a_token(
    client: httpx.AsyncClient, credential: Credential
) -> None:
    response = await client.post(
        "/oauth/token",
        data={**GRANT, "client_id": credential.client_id, "client_secret": credential.secret},
    )
    assert response.status_code == 200
    assert response.json()["access_token"]


async def test_basic_credentials_are_form_urldecoded(
    client: httpx.AsyncClient, credential: Credential
) -> None:
    # RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding.
    encoded = credential.client_id.replace("_", "%5F") + ":" + credential.secret.replace("_", "%5F")
    auth = base64.b64encode(encoded.encode()).decode()
    response = await client.post(
        "/oauth/token", data=GRANT, headers={"Authorization": f"Basic {auth}"}
    )
    assert response.status_code == 200, response.text


async def test_a_narrower_scope_can_be_requested(
    client: httpx.AsyncClient, credential: Credential
) -> None:
    response = await client.post(
        "/oauth/token",
        data={**GRANT, "scope": "risk:read"},
        auth=(credential.client_id, credential.secret),
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "risk:read"


async def test_wrong_secret_is_invalid_client(
    client: httpx.AsyncClient, credential: Credential
) -> None:
    response = await client.post(
        "/oauth/token", data=GRANT, auth=(credential.client_id, credential.secret + "x")
    )
    _oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_unknown_client_is_invalid_client_with_the_same_answer(
    client: httpx.AsyncClient, credential: Credential
) -> None:
    unknown = await client.post("/oauth/token", data=GRANT, auth=("cl_nobody", credential.secret))
    wrong = await client.post("/oauth/token", data=GRANT, auth=(credential.client_id, "lsk_wrong"))
    _oauth_error(unknown, 401, "invalid_client")
    # The answer does not tell an unknown client from a wrong secret.
    assert unknown.json() == wrong.json()


async def test_revoked_client_gets_no_token(
    client: httpx.AsyncClient, credential: Credential, session: AsyncSession, runtime: Runtime
) -> None:
    await members.revoke_client(session, op(runtime), credential.client_id)
    await session.commit()
    response = await client.post(
        "/oauth/token", data=GRANT, auth=(credential.client_id, credential.secret)
    )
    _oauth_error(response, 401, "invalid_client")
    assert "revoked" in response.json()["error_description"]


async def test_suspended_member_gets_no_token(
    client: httpx.AsyncClient, credential: Credential, session: AsyncSession, runtime: Runtime
) -> None:
    await members.set_member_status(
        session, op(runtime), credential.member.id, MemberStatus.SUSPENDED
    )
    await session.commit()
    response = await client.post(
        "/oauth/token", data=GRANT, auth=(credential.client_id, credential.secret)
    )
    _oauth_error(response, 401, "invalid_client")
    assert "suspended" in response.json()["error_description"]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
        ({**GRANT, "scope": "audit:read"}, "invalid_scope"),
        ({**GRANT, "scope": "disputes:write"}, "invalid_scope"),
    ],
)
async def test_bad_token_requests_get_rfc6749_errors(
    client: httpx.AsyncClient, credential: Credential, data: dict[str, str], error: str
) -> None:
    response = await client.post(
        "/oauth/token", data=data, auth=(credential.client_id, credential.secret)
    )
    _oauth_error(response, 400, error)


async def test_a_repeated_parameter_is_refused(
    client: httpx.AsyncClient, credential: Credential
) -> None:
    response = await client.post(
        "/oauth/token",
        content=b"grant_type=client_credentials&grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=(credential.client_id, credential.secret),
    )
    _oauth_error(response, 400, "invalid_request")


async def test_json_body_is_refused(client: httpx.AsyncClient, credential: Credential) -> None:
    response = await client.post(
        "/oauth/token", json=GRANT, auth=(credential.client_id, credential.secret)
    )
    _oauth_error(response, 400, "invalid_request")


async def test_two_authentication_methods_are_refused(
    client: httpx.AsyncClient, credential: Credential
) -> None:
    response = await client.post(
        "/oauth/token",
        data={**GRANT, "client_id": credential.client_id, "client_secret": credential.secret},
        auth=(credential.client_id, credential.secret),
    )
    _oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "authorization",
    ["Bearer abc", "Basic", "Basic not*base64", "Basic " + base64.b64encode(b"nocolon").decode()],
)
async def test_malformed_basic_credentials_are_invalid_client(
    client: httpx.AsyncClient, authorization: str
) -> None:
    response = await client.post(
        "/oauth/token", data=GRANT, headers={"Authorization": authorization}
    )
    _oauth_error(response, 401, "invalid_client")


async def test_no_client_authentication_is_invalid_client(client: httpx.AsyncClient) -> None:
    response = await client.post("/oauth/token", data=GRANT)
    _oauth_error(response, 401, "invalid_client")


async def test_an_oversized_token_request_is_refused(
    client: httpx.AsyncClient, credential: Credential
) -> None:
    response = await client.post(
        "/oauth/token",
        data={**GRANT, "scope": "risk:read " * 1000},
        auth=(credential.client_id, credential.secret),
    )
    _oauth_error(response, 400, "invalid_request")


async def test_jwks_publishes_the_signing_key(client: httpx.AsyncClient, runtime: Runtime) -> None:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    (key,) = response.json()["keys"]
    signing = runtime.token_keys.current().signing_key
    assert key == signing.public_jwk()
    assert "d" not in key


async def test_authorization_server_metadata(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    meta = response.json()
    assert meta["issuer"] == "http://testserver"
    assert meta["token_endpoint"] == "http://testserver/oauth/token"
    assert meta["jwks_uri"] == "http://testserver/.well-known/jwks.json"
    assert meta["grant_types_supported"] == ["client_credentials"]
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
    }
    assert set(meta["scopes_supported"]) == {s.value for s in Scope}


async def test_a_token_records_the_credentials_use_and_upgrades_its_hash(
    client: httpx.AsyncClient,
    credential: Credential,
    session: AsyncSession,
    runtime: Runtime,
    settings: Settings,
) -> None:
    before = await session.scalar(
        sa.select(Client.secret_hash).where(Client.client_id == credential.client_id)
    )
    assert before is not None
    assert "t=1" in before
    await session.rollback()  # end the read: on SQLite it would hold the write lock
    # The operator raises the argon2id parameters; the next token request rehashes.
    runtime.hasher = SecretHasher(time_cost=2, memory_cost_kib=128, parallelism=1)
    response = await client.post(
        "/oauth/token", data=GRANT, auth=(credential.client_id, credential.secret)
    )
    assert response.status_code == 200
    session.expire_all()
    row = (
        await session.execute(
            sa.select(Client.secret_hash, Client.last_used_at).where(
                Client.client_id == credential.client_id
            )
        )
    ).one()
    assert row.last_used_at == runtime.clock.now()
    assert "m=128,t=2,p=1" in row.secret_hash
    await session.rollback()
    # The upgraded hash still accepts the same secret.
    again = await client.post(
        "/oauth/token", data=GRANT, auth=(credential.client_id, credential.secret)
    )
    assert again.status_code == 200
