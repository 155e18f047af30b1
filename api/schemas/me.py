"""``GET /v1/me``: who the caller is, as the ledger sees it."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field

from api.schemas import example


class MemberOut(BaseModel):
    id: uuid.UUID = Field(description="the member's id")
    name: str = Field(description="the member's short ASCII name in the ledger")
    display_name: str = Field(description="the name people see, in any script (京东)")
    status: str = Field(description="active or suspended")


class ClientOut(BaseModel):
    client_id: str = Field(description="the client credential in use")
    label: str = Field(description="the label it was issued with")
    scopes: list[str] = Field(description="every scope the credential holds")
    created_at: dt.datetime = Field(description="when it was issued")


class TokenOut(BaseModel):
    scopes: list[str] = Field(description="the scopes this token carries")
    expires_at: dt.datetime = Field(description="when this token stops working")


class MeResponse(BaseModel):
    """Who the caller is, as the ledger sees it."""

    model_config = example(
        {
            "member": {
                "id": "01938e11-2f3a-7b4c-8d5e-6f708192a3b4",
                "name": "shop-a",
                "display_name": "某某商城",
                "status": "active",
            },
            "client": {
                "client_id": "cl_7hQm2xVb",
                "label": "refund service",
                "scopes": ["reports:write", "risk:read"],
                "created_at": "2026-11-01T00:00:00Z",
            },
            "token": {"scopes": ["risk:read"], "expires_at": "2026-12-01T10:15:00Z"},
        }
    )

    member: MemberOut = Field(description="the calling member")
    client: ClientOut = Field(description="the client credential in use")
    token: TokenOut = Field(description="the token in use")
