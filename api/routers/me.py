"""The caller's own identity: the first call an integrator makes."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends

from api.auth import authorize
from api.deps import ReadSessionDep
from api.schemas.me import ClientOut, MemberOut, MeResponse, TokenOut
from ledger.access.permissions import Permission, format_scopes
from ledger.access.principals import ClientPrincipal, Principal
from ledger.members import service as members

router = APIRouter(prefix="/v1", tags=["members"])

ProfileReader = Annotated[Principal, Depends(authorize(Permission.PROFILE_READ))]


@router.get("/me", response_model=MeResponse)
async def me(principal: ProfileReader, session: ReadSessionDep) -> MeResponse:
    """The calling member, the client credential in use, and the token's scopes."""
    assert isinstance(principal, ClientPrincipal)  # only clients hold profile:read
    member, client = await members.describe_client(session, principal.client_id)
    return MeResponse(
        member=MemberOut(
            id=member.id,
            name=member.name,
            display_name=member.display_name,
            status=member.status.value,
        ),
        client=ClientOut(
            client_id=client.client_id,
            label=client.label,
            scopes=list(client.scopes),
            created_at=client.created_at,
        ),
        token=TokenOut(
            scopes=format_scopes(principal.scopes).split(),
            expires_at=dt.datetime.fromtimestamp(principal.token_expires_at, dt.UTC),
        ),
    )
