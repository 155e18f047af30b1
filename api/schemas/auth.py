from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas import RequestModel


class SignIn(RequestModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserToken(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105  (the RFC 6750 token type)
    expires_in: int
    role: str
