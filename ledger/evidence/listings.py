"""A member's listing (catalogue) photos, registered so that a claim photo made from
the seller's own photo, with a damage filter, is recognised.

Registration is idempotent per member, listing reference and fingerprint: sending the
same photo again changes nothing (and brings a withdrawn one back). Withdrawing a
listing reference stops its photos matching at once; the rows are kept, marked, for
the audit trail. Both are recorded. Whether other members' listing photos are matched
too is the scoring policy's ``match_other_listings`` (off by default, docs/evidence.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal, require
from ledger.audit.log import record
from ledger.audit.tags import Tag
from ledger.context import Operation
from ledger.db import insert_or_ignore
from ledger.errors import InvalidInput
from ledger.evidence.keys import FingerprintKey
from ledger.evidence.models import ListingPhoto
from ledger.evidence.photos import MIN_QUALITY, PhotoInput

MAX_LISTING_PHOTOS = 1000
REFERENCE = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")


@dataclass(frozen=True, slots=True)
class ListingPhotoInput:
    reference: str
    photo: PhotoInput


@dataclass(frozen=True, slots=True)
class Registered:
    registered: int  # new, or brought back from a withdrawal
    unchanged: int  # registered before


def _check(items: Sequence[ListingPhotoInput]) -> None:
    if not 1 <= len(items) <= MAX_LISTING_PHOTOS:
        raise InvalidInput(f"send 1 to {MAX_LISTING_PHOTOS} photos", fields=("photos",))
    for n, item in enumerate(items):
        if not REFERENCE.match(item.reference):
            raise InvalidInput(
                "a listing reference is 1-128 letters, digits and . _ : / -",
                fields=(f"photos.{n}.reference",),
            )
        if not MIN_QUALITY <= item.photo.quality <= 100:
            raise InvalidInput(
                f"a photo's PDQ quality is {MIN_QUALITY} to 100", fields=(f"photos.{n}.quality",)
            )


async def register(
    session: AsyncSession,
    op: Operation,
    principal: ClientPrincipal,
    items: Sequence[ListingPhotoInput],
    *,
    key: FingerprintKey,
) -> Registered:
    require(principal, Permission.EVIDENCE_CHECK)
    _check(items)
    member_id = principal.member_id
    rows = {(item.reference, key.transform(item.photo.pdq)): item.photo.quality for item in items}
    values = [
        {
            "member_id": member_id,
            "reference": reference,
            "fingerprint": fingerprint,
            "quality": quality,
            "registered_at": op.now,
            "withdrawn_at": None,
        }
        for (reference, fingerprint), quality in rows.items()
    ]
    statement = insert_or_ignore(
        session, ListingPhoto, "member_id", "reference", "fingerprint"
    ).returning(ListingPhoto.id)
    inserted = len(list(await session.scalars(statement, values)))
    # One statement for the photos registered before and withdrawn since: back again.
    revived_result = await session.execute(
        sa.update(ListingPhoto)
        .where(
            ListingPhoto.member_id == member_id,
            sa.tuple_(ListingPhoto.reference, ListingPhoto.fingerprint).in_(list(rows)),
            ListingPhoto.withdrawn_at.is_not(None),
        )
        .values(withdrawn_at=None, registered_at=op.now)
    )
    revived = int(getattr(revived_result, "rowcount", 0) or 0)
    done = Registered(registered=inserted + revived, unchanged=len(rows) - inserted - revived)
    await record(
        session,
        op.event(
            Tag.LISTING_PHOTOS_REGISTERED,
            body={"photos": len(rows), "registered": done.registered},
        ),
        now=op.now,
    )
    return done


async def withdraw(
    session: AsyncSession, op: Operation, principal: ClientPrincipal, reference: str
) -> int:
    """Stop a listing's photos matching; how many were withdrawn."""
    require(principal, Permission.EVIDENCE_CHECK)
    if not REFERENCE.match(reference):
        raise InvalidInput(
            "a listing reference is 1-128 letters, digits and . _ : / -", fields=("reference",)
        )
    result = await session.execute(
        sa.update(ListingPhoto)
        .where(
            ListingPhoto.member_id == principal.member_id,
            ListingPhoto.reference == reference,
            ListingPhoto.withdrawn_at.is_(None),
        )
        .values(withdrawn_at=op.now)
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    await record(
        session,
        op.event(Tag.LISTING_PHOTOS_WITHDRAWN, reference=reference, body={"photos": count}),
        now=op.now,
    )
    return count
