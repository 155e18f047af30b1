"""Report statuses as SQL conditions: the database filters by status, on an index.

``policy.status()`` derives a report's status at a moment from what is stored; each
condition here is the same rule, written for the database, so that a list filtered by
status reads only the reports it returns. A test checks every status both ways.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from ledger.disputes.models import Dispute, DisputeItem, Resolution
from ledger.reports.models import Report
from ledger.reports.policy import ReportPolicy, State, Status


def _open_dispute(now: dt.datetime, *, overdue: bool) -> sa.Exists:
    deadline = Dispute.deadline <= now if overdue else Dispute.deadline > now
    return sa.exists().where(
        DisputeItem.report_id == Report.id,
        DisputeItem.resolution == Resolution.OPEN,
        Dispute.id == DisputeItem.dispute_id,
        deadline,
    )


def status_is(  # noqa: PLR0911  (one case per status, as in policy.status())
    status: Status, *, now: dt.datetime, policy: ReportPolicy
) -> sa.ColumnElement[bool]:
    """Reports whose ``status()`` at ``now`` is ``status`` (expired ones never match:
    lists leave them out before any status filter)."""
    overdue = _open_dispute(now, overdue=True)
    live = sa.and_(Report.state == State.ACTIVE, ~overdue)
    unnoticed = Report.notified_at.is_(None)
    grace_ended = Report.filed_at <= now - policy.notice_grace
    match status:
        case Status.WITHDRAWN:
            return Report.state == State.WITHDRAWN
        case Status.SUPPRESSED:
            return sa.or_(
                Report.state == State.SUPPRESSED, sa.and_(Report.state == State.ACTIVE, overdue)
            )
        case Status.SUSPENDED:
            return sa.and_(live, unnoticed, grace_ended)
        case Status.PENDING_NOTICE:
            return sa.and_(live, unnoticed, ~grace_ended)
        case Status.DISPUTED:
            return sa.and_(live, ~unnoticed, _open_dispute(now, overdue=False))
        case Status.ACTIVE:
            return sa.and_(live, ~unnoticed, ~_open_dispute(now, overdue=False))
        case Status.EXPIRED:
            return sa.false()
