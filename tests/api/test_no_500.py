"""No input produces a 500: arbitrary bodies and headers get 4xx answers."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CONTENT_TYPES = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=latin-1",
        "application/json",
        "text/plain",
        "",
    ]
)
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=600), content_type=CONTENT_TYPES, authorization=HEADER_TEXT)
async def test_the_token_endpoint_never_fails_with_500(
    client: httpx.AsyncClient, body: bytes, content_type: str, authorization: str
) -> None:
    headers = {"Content-Type": content_type}
    if authorization:
        headers["Authorization"] = authorization
    response = await client.post("/oauth/token", content=body, headers=headers)
    assert response.status_code in {400, 401}, response.text
    assert response.json()["error"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    form=st.dictionaries(
        st.sampled_from(["grant_type", "scope", "client_id", "client_secret", "x"]),
        st.text(max_size=80),
        max_size=5,
    )
)
async def test_arbitrary_token_forms_get_rfc6749_errors(
    client: httpx.AsyncClient, form: dict[str, str]
) -> None:
    response = await client.post("/oauth/token", data=form)
    assert response.status_code in {400, 401}, response.text


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(authorization=HEADER_TEXT, request_id=HEADER_TEXT)
async def test_protected_routes_never_fail_with_500(
    client: httpx.AsyncClient, authorization: str, request_id: str
) -> None:
    headers = {"X-Request-ID": request_id}
    if authorization:
        headers["Authorization"] = authorization
    response = await client.get("/v1/me", headers=headers)
    assert response.status_code in {400, 401}, response.text
    assert response.headers["content-type"] == "application/problem+json"
