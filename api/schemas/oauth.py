"""``POST /oauth/token``: RFC 6749 client credentials."""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic.config import JsonDict

from api.schemas import example

EXAMPLE_TOKEN: JsonDict = {
    "access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9.eyIuLi4iOiIuLi4ifQ.c2ln",
    "token_type": "Bearer",
    "expires_in": 900,
}


class BearerToken(BaseModel):
    """An access token, as both token endpoints give it."""

    access_token: str = Field(description="a bearer token (JWT) for the API")
    token_type: str = Field(default="Bearer", description="always Bearer (RFC 6750)")
    expires_in: int = Field(description="seconds until it expires")


class TokenResponse(BearerToken):
    """RFC 6749 §5.1 successful access token response."""

    model_config = example(EXAMPLE_TOKEN | {"scope": "reports:write risk:read"})

    scope: str = Field(description="the scopes granted, space-separated")


class OAuthErrorResponse(BaseModel):
    """RFC 6749 §5.2 error response."""

    model_config = example(
        {"error": "invalid_client", "error_description": "unknown client or wrong secret"}
    )

    error: str = Field(description="invalid_request, invalid_client, invalid_scope, …")
    error_description: str = Field(description="what went wrong, in words")
