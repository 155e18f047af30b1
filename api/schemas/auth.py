"""``POST /v1/auth/token``: a console user's sign-in through the API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import RequestModel, example


class SignIn(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"username": "auditor-li", "password": "••••••••"}]}
    )

    username: str = Field(min_length=1, max_length=64, description="the user's name")
    password: str = Field(min_length=1, max_length=1024, description="the user's password")


class UserToken(BaseModel):
    model_config = example(
        {
            "access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9.eyIuLi4iOiIuLi4ifQ.c2ln",
            "token_type": "Bearer",
            "expires_in": 900,
            "role": "auditor",
        }
    )

    access_token: str = Field(description="a bearer token (JWT) for the API")
    token_type: str = Field(default="Bearer", description="always Bearer (RFC 6750)")
    expires_in: int = Field(description="seconds until it expires")
    role: str = Field(description="the user's role: auditor or operator")
