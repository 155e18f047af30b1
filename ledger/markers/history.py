"""Which reports were filed while their subject had a protective marker in force: shown
with the report wherever it is listed."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.markers.models import ProtectiveMarker


async def marked_at_filing(
    session: AsyncSession, reports: list[tuple[uuid.UUID, str | None, dt.datetime]]
) -> set[uuid.UUID]:
    """Of ``(report id, subject, filed_at)``, the reports filed while the subject had a
    marker in force (one read for the whole list)."""
    subjects = {s for _, s, _ in reports if s}
    if not subjects:
        return set()
    rows = list(
        await session.execute(
            sa.select(
                ProtectiveMarker.subject,
                ProtectiveMarker.placed_at,
                ProtectiveMarker.expires_at,
                ProtectiveMarker.removed_at,
            ).where(ProtectiveMarker.subject.in_(subjects))
        )
    )
    marked = set()
    for report_id, subject, filed_at in reports:
        for s, placed, expires, removed in rows:
            ended = min(expires, removed) if removed is not None else expires
            if s == subject and placed <= filed_at < ended:
                marked.add(report_id)
    return marked
