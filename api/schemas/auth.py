"""``POST /v1/auth/token``: a console user's sign-in through the API."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from api.schemas import RequestModel, example
from api.schemas.oauth import EXAMPLE_TOKEN, BearerToken


class SignIn(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"username": "auditor-li", "password": "••••••••"}]}
    )

    username: str = Field(min_length=1, max_length=64, description="the user's name")
    password: str = Field(min_length=1, max_length=1024, description="the user's password")
    one_time_code: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="for a user with a second factor: the 6-digit code from the "
        "authenticator app (RFC 6238), or an unused recovery code (XXXX-XXXX-XXXX-XXXX)",
    )


class UserToken(BearerToken):
    model_config = example(EXAMPLE_TOKEN | {"role": "auditor"})

    role: str = Field(description="the user's role: auditor or operator")
