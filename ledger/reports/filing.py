"""Filing reports, one or a batch: checked per item, idempotent per case_ref.

Every filing records its audit event in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.principals import ClientPrincipal
from ledger.audit.log import record_many
from ledger.audit.tags import Tag
from ledger.context import Operation
from ledger.db import insert_or_ignore
from ledger.errors import (
    Contention,
    DuplicateReport,
    InvalidInput,
    LedgerError,
)
from ledger.evidence.keys import FingerprintKey
from ledger.evidence.service import store_report_photos
from ledger.markers import history
from ledger.reports.content import ReportInput, columns_of
from ledger.reports.models import Report
from ledger.reports.policy import ReportPolicy, State
from ledger.reports.views import ReportView, reporting_member, view_now, view_of
from ledger.types import uuid7

REPORTS_TABLE: sa.Table = Report.__table__  # type: ignore[assignment]


class Filed(StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"  # the same report was filed before: nothing new was written


@dataclass(frozen=True, slots=True)
class FileResult:
    outcome: Filed
    report: ReportView


async def file_report(
    session: AsyncSession,
    op: Operation,
    principal: ClientPrincipal,
    data: ReportInput,
    *,
    policy: ReportPolicy,
    key: FingerprintKey,
) -> FileResult:
    """File one report. Re-sending the same report answers with the one filed before;
    a different report under the same case_ref is refused with ``DuplicateReport``."""
    (result,) = await file_reports(session, op, principal, [data], policy=policy, key=key)
    if isinstance(result, LedgerError):
        raise result
    return result


async def file_reports(
    session: AsyncSession,
    op: Operation,
    principal: ClientPrincipal,
    items: Sequence[ReportInput],
    *,
    policy: ReportPolicy,
    key: FingerprintKey,
) -> list[FileResult | LedgerError]:
    """File many reports in a few statements; one result per item, in order.

    An item that fails a check comes back as its error and writes nothing; the others
    are filed. Concurrent filings of the same case_ref are safe: the insert ignores a
    conflict, and the item is then answered as the duplicate it is.
    """
    member_id = reporting_member(principal)
    results: list[FileResult | LedgerError | None] = [None] * len(items)
    fresh: dict[str, tuple[int, ReportInput, uuid.UUID, dt.datetime]] = {}
    for index, data in enumerate(items):
        try:
            data.check(op.now)
            expires_at = policy.expires_at(data.category, data.occurred_at)
            if expires_at <= op.now:
                raise InvalidInput(
                    "this case is older than the retention period and can no longer be reported",
                    fields=("occurred_at",),
                )
        except LedgerError as exc:
            results[index] = exc
            continue
        earlier = fresh.get(data.case_ref)
        if earlier is not None:
            results[index] = DuplicateReport(
                "this batch repeats a case_ref: send each case once", report_id=str(earlier[2])
            )
            continue
        fresh[data.case_ref] = (index, data, uuid7(), expires_at)

    candidates = {
        report_id: Report(
            **columns_of(data),
            id=report_id,
            member_id=member_id,
            fingerprint=data.fingerprint(),
            filed_at=op.now,
            expires_at=expires_at,
            state=State.ACTIVE,
            state_changed_at=op.now,
        )
        for _, data, report_id, expires_at in fresh.values()
    }
    # Inserted in (member, case_ref) order: two batches that share case_refs then wait
    # on each other's unique-index entries in the same order, and cannot deadlock.
    rows = [
        {c.key: getattr(report, c.key) for c in REPORTS_TABLE.columns if c.key != "audit_event_id"}
        for report in sorted(candidates.values(), key=lambda r: r.case_ref or "")
    ]
    inserted: set[uuid.UUID] = set()
    if rows:
        statement = insert_or_ignore(session, Report, "member_id", "case_ref").returning(Report.id)
        inserted = set(await session.scalars(statement, rows))
    # Not inserted: filed before (or a moment ago, concurrently): answered as such.
    known = [case_ref for case_ref, (_, _, rid, _) in fresh.items() if rid not in inserted]
    found = await _existing(session, member_id, known)
    if len(found) != len(known):
        # The row that stopped the insert is not visible to this transaction (a
        # snapshot older than its commit): the request is retried as a whole.
        raise Contention("a concurrent filing of the same case_ref is still settling")
    for case_ref, report in found.items():
        index, data, _, _ = fresh.pop(case_ref)
        results[index] = await _duplicate(session, report, data, op.now, policy)

    filed = list(fresh.values())
    events = [
        op.event(
            Tag.REPORT_SUBMITTED,
            subject=data.subject,
            reference=data.case_ref,
            body={
                "report_id": str(report_id),
                "category": data.category.value,
                "basis": data.basis.value,
                "photos": len(data.evidence_photos),
            },
        )
        for _, data, report_id, _ in filed
    ]
    event_ids = await record_many(session, events, now=op.now)
    if filed:
        await session.execute(
            # The Core table: an executemany UPDATE, not the ORM's bulk-by-primary-key.
            sa.update(REPORTS_TABLE)
            .where(REPORTS_TABLE.c.id == sa.bindparam("report_id"))
            .values(audit_event_id=sa.bindparam("event_id")),
            [
                {"report_id": report_id, "event_id": event_id}
                for (_, _, report_id, _), event_id in zip(filed, event_ids, strict=True)
            ],
        )
    await store_report_photos(
        session,
        key,
        {report_id: data.evidence_photos for _, data, report_id, _ in filed},
        member_id=member_id,
        now=op.now,
    )
    marked = await history.marked_at_filing(
        session, [(r.id, r.subject, r.filed_at) for r in (candidates[i] for _, _, i, _ in filed)]
    )
    for (index, _, report_id, _), event_id in zip(filed, event_ids, strict=True):
        # A new report has no disputes or statements: its view needs no read.
        report = candidates[report_id]
        report.audit_event_id = event_id
        view = view_of(report, [], [], op.now, policy, filed_under_marker=report.id in marked)
        assert view is not None
        results[index] = FileResult(Filed.CREATED, view)
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


async def _existing(
    session: AsyncSession, member_id: uuid.UUID, case_refs: list[str]
) -> dict[str, Report]:
    found: dict[str, Report] = {}
    for start in range(0, len(case_refs), 500):
        chunk = case_refs[start : start + 500]
        rows = await session.scalars(
            sa.select(Report).where(Report.member_id == member_id, Report.case_ref.in_(chunk))
        )
        found.update({r.case_ref: r for r in rows if r.case_ref is not None})
    return found


async def _duplicate(
    session: AsyncSession,
    existing: Report,
    data: ReportInput,
    now: dt.datetime,
    policy: ReportPolicy,
) -> FileResult | DuplicateReport:
    """The answer to an item whose case_ref is taken: the same report (filed before, and
    answered again), or a different one, refused for this item alone."""
    if existing.fingerprint != data.fingerprint():
        return DuplicateReport(
            "another report already uses this case_ref; choose a new case_ref, or withdraw "
            "the existing report first",
            report_id=str(existing.id),
        )
    return FileResult(Filed.DUPLICATE, await view_now(session, existing, now, policy))
