"""Idempotency keys for batch submissions: a retry with the same key gets the same answer."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.db import insert_or_ignore
from ledger.errors import Conflict, Contention, InvalidInput
from ledger.reports.models import IdempotencyKey

KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True, slots=True)
class Stored:
    status_code: int
    response: str


def request_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def claim(
    session: AsyncSession, member_id: uuid.UUID, key: str, digest: str, *, now: dt.datetime
) -> Stored | None:
    """Claim ``key`` for this request (None), or return the answer stored for it.

    One statement decides, under any concurrency: the claim is an insert that ignores a
    conflict. A concurrent claim of the same key waits for the first request's
    transaction; once that commits, the key's answer is read and replayed (or refused
    if it answered another request), and if it rolled back, the insert goes ahead.
    """
    if not KEY.match(key):
        raise InvalidInput(
            "Idempotency-Key is 1-128 letters, digits and . _ : -", fields=("idempotency-key",)
        )
    claimed = await session.scalar(
        insert_or_ignore(session, IdempotencyKey, "member_id", "key")
        .values(
            member_id=member_id,
            key=key,
            request_sha256=digest,
            status_code=0,  # answered by ``complete`` in the same transaction
            response="",
            created_at=now,
        )
        .returning(IdempotencyKey.key)
    )
    if claimed is not None:
        return None
    row = (
        await session.execute(
            sa.select(
                IdempotencyKey.request_sha256, IdempotencyKey.status_code, IdempotencyKey.response
            ).where(IdempotencyKey.member_id == member_id, IdempotencyKey.key == key)
        )
    ).one_or_none()
    if row is None:
        raise Contention("a concurrent request with this Idempotency-Key is still settling")
    if row.request_sha256 != digest:
        raise Conflict(
            "this Idempotency-Key was used for a different request; use a new key",
            current_state="used",
        )
    return Stored(row.status_code, row.response)


async def complete(
    session: AsyncSession, member_id: uuid.UUID, key: str, *, status_code: int, response: str
) -> None:
    """Store the answer of the request that claimed ``key``."""
    await session.execute(
        sa.update(IdempotencyKey)
        .where(IdempotencyKey.member_id == member_id, IdempotencyKey.key == key)
        .values(status_code=status_code, response=response)
    )
