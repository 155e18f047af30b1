"""Idempotency keys for batch submissions: a retry with the same key gets the same answer."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.errors import Conflict, InvalidInput
from ledger.reports.models import IdempotencyKey

KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True, slots=True)
class Stored:
    status_code: int
    response: str


def request_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def lookup(
    session: AsyncSession, member_id: uuid.UUID, key: str, digest: str
) -> Stored | None:
    """The stored answer for ``key``, or None; a key reused for another request is refused."""
    if not KEY.match(key):
        raise InvalidInput(
            "Idempotency-Key is 1-128 letters, digits and . _ : -", fields=("idempotency-key",)
        )
    row = await session.get(IdempotencyKey, (member_id, key))
    if row is None:
        return None
    if row.request_sha256 != digest:
        raise Conflict(
            "this Idempotency-Key was used for a different request; use a new key",
            current_state="used",
        )
    return Stored(row.status_code, row.response)


async def store(
    session: AsyncSession,
    member_id: uuid.UUID,
    key: str,
    digest: str,
    *,
    status_code: int,
    response: str,
    now: dt.datetime,
) -> None:
    await session.execute(
        sa.insert(IdempotencyKey).values(
            member_id=member_id,
            key=key,
            request_sha256=digest,
            status_code=status_code,
            response=response,
            created_at=now,
        )
    )
