"""Protective markers: at a buyer's request, a member marks the buyer's pseudonym
``identity_misused`` (someone else used their phone number or ID), as Cifas's
Protective Registration and FCRA fraud alerts do.

A marker lasts two years (``marker_validity``), may be renewed, and is removed only at
the buyer's request through a member (any member: the buyer asks whichever platform
they use). While it lasts, the risk answer and the evidence check carry it with advice
to verify the buyer's identity, not to treat them as abusive; reports filed while it
lasts are shown as such. Placed, renewed, removed and shown: all audited; all listed
in the buyer's disclosure.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal, require
from ledger.audit.log import record
from ledger.audit.tags import Tag
from ledger.context import Operation
from ledger.disputes.service import REFERENCE
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.i18n import N_, gettext
from ledger.markers.models import MarkerKind, ProtectiveMarker
from ledger.reports.policy import ReportPolicy
from ledger.subjects.pseudonyms import check_pseudonym

# Shown with the risk answer and the evidence check while a marker is in force.
ADVICE = N_(
    "The buyer has told a platform that someone else used their phone number or "
    "identity. Records on this buyer may be that person's doing. Verify that you are "
    "dealing with the buyer themself, for example with a code sent to a number they "
    "confirm, and do not treat them as abusive because of this marker."
)


def advice(locale: str) -> str:
    return gettext(locale, ADVICE)


@dataclass(frozen=True, slots=True)
class MarkerView:
    id: uuid.UUID
    subject: str
    kind: MarkerKind
    placed_at: dt.datetime
    expires_at: dt.datetime
    renewed_at: dt.datetime | None
    removed_at: dt.datetime | None
    placed_by: uuid.UUID
    removed_by: uuid.UUID | None

    def active(self, now: dt.datetime) -> bool:
        return self.removed_at is None and now < self.expires_at


def view_of(m: ProtectiveMarker) -> MarkerView:
    return MarkerView(
        id=m.id,
        subject=m.subject,
        kind=m.kind,
        placed_at=m.placed_at,
        expires_at=m.expires_at,
        renewed_at=m.renewed_at,
        removed_at=m.removed_at,
        placed_by=m.placed_by,
        removed_by=m.removed_by,
    )


def _checked(principal: ClientPrincipal, subject: str, reference: str) -> uuid.UUID:
    require(principal, Permission.MARKERS_WRITE)
    check_pseudonym(subject)
    if not REFERENCE.match(reference):
        raise InvalidInput(
            "reference is your ticket for the buyer's request: 1-128 letters, digits and . _ : / -",
            fields=("reference",),
        )
    return principal.member_id


async def _current(
    session: AsyncSession, subject: str, now: dt.datetime, *, lock: bool = False
) -> ProtectiveMarker | None:
    query = (
        sa.select(ProtectiveMarker)
        .where(
            ProtectiveMarker.subject == subject,
            ProtectiveMarker.removed_at.is_(None),
            ProtectiveMarker.expires_at > now,
        )
        .order_by(ProtectiveMarker.placed_at.desc())
        .limit(1)
    )
    if lock:
        query = query.with_for_update()
    marker: ProtectiveMarker | None = await session.scalar(query)
    return marker


async def _audit(
    session: AsyncSession, op: Operation, tag: Tag, marker: ProtectiveMarker, reference: str
) -> None:
    body = {
        "marker_id": str(marker.id),
        "kind": marker.kind.value,
        "expires_at": marker.expires_at.isoformat(),
    }
    await record(
        session, op.event(tag, subject=marker.subject, reference=reference, body=body), now=op.now
    )


async def place(
    session: AsyncSession,
    op: Operation,
    principal: ClientPrincipal,
    *,
    subject: str,
    reference: str,
    policy: ReportPolicy,
) -> MarkerView:
    """Place an ``identity_misused`` marker at the buyer's request."""
    member_id = _checked(principal, subject, reference)
    if await _current(session, subject, op.now, lock=True) is not None:
        raise Conflict(
            "this buyer already has a protective marker: renew it instead",
            current_state="active",
        )
    marker = ProtectiveMarker(
        subject=subject,
        kind=MarkerKind.IDENTITY_MISUSED,
        placed_by=member_id,
        reference=reference,
        placed_at=op.now,
        expires_at=op.now + policy.marker_validity,
    )
    session.add(marker)
    await session.flush()
    await _audit(session, op, Tag.MARKER_PLACED, marker, reference)
    return view_of(marker)


async def _own_current(
    session: AsyncSession, subject: str, marker_id: uuid.UUID, now: dt.datetime
) -> ProtectiveMarker:
    marker = await _current(session, subject, now, lock=True)
    if marker is None or marker.id != marker_id:
        raise NotFound("this buyer has no protective marker in force with that id")
    return marker


async def renew(
    session: AsyncSession,
    op: Operation,
    principal: ClientPrincipal,
    *,
    subject: str,
    marker_id: uuid.UUID,
    reference: str,
    policy: ReportPolicy,
) -> MarkerView:
    """Renew a marker at the buyer's request: it lasts the full period again from now."""
    _checked(principal, subject, reference)
    marker = await _own_current(session, subject, marker_id, op.now)
    marker.expires_at = op.now + policy.marker_validity
    marker.renewed_at = op.now
    await _audit(session, op, Tag.MARKER_RENEWED, marker, reference)
    return view_of(marker)


async def remove(
    session: AsyncSession,
    op: Operation,
    principal: ClientPrincipal,
    *,
    subject: str,
    marker_id: uuid.UUID,
    reference: str,
    at_buyers_request: bool,
) -> MarkerView:
    """Remove a marker, only at the buyer's own request (the member says so, and names
    its ticket for it): no member may remove one for its own reasons."""
    _checked(principal, subject, reference)
    if not at_buyers_request:
        raise InvalidInput(
            "a protective marker is removed only at the buyer's own request: confirm "
            "with at_buyers_request: true and your ticket as reference",
            fields=("at_buyers_request",),
        )
    marker = await _own_current(session, subject, marker_id, op.now)
    marker.removed_at = op.now
    marker.removed_by = principal.member_id
    await _audit(session, op, Tag.MARKER_REMOVED, marker, reference)
    return view_of(marker)


async def of_subject(session: AsyncSession, subject: str) -> list[MarkerView]:
    """Every marker the buyer has had, in force or not, oldest first (the disclosure)."""
    rows = await session.scalars(
        sa.select(ProtectiveMarker)
        .where(ProtectiveMarker.subject == subject)
        .order_by(ProtectiveMarker.placed_at)
        .limit(100)
    )
    return [view_of(m) for m in rows]
