from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel


class MemberOut(BaseModel):
    id: uuid.UUID
    name: str
    status: str


class ClientOut(BaseModel):
    client_id: str
    label: str
    scopes: list[str]
    created_at: dt.datetime


class TokenOut(BaseModel):
    scopes: list[str]
    expires_at: dt.datetime


class MeResponse(BaseModel):
    """Who the caller is, as the ledger sees it."""

    member: MemberOut
    client: ClientOut
    token: TokenOut
