"""Notify listeners of the subjects whose disputes changed (PostgreSQL only).

Each server process holds the rows it read for a subject with reports until a
notification names that subject (ledger/scoring/service.py ``HeldReports``). Those rows
include the deadlines of the reports' open disputes, so a dispute opened or answered
must name its subject as a change to a report does (migration 0019). These triggers fire
once per statement on ``dispute_items`` and send the subjects of the reports the
statement touched on the same channel, in the same form: up to 100 names, else ``*``.

Revision ID: 20261206_0020
Revises: 20261203_0019
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "20261206_0020"
down_revision: str | None = "20261203_0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENTS = {
    "insert": ("INSERT", "NEW TABLE AS changed_rows"),
    "update": ("UPDATE", "NEW TABLE AS changed_rows"),  # an item never moves to another report
    "delete": ("DELETE", "OLD TABLE AS changed_rows"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION ledger_notify_dispute_subjects() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            touched varchar[];
        BEGIN
            SELECT array_agg(s) INTO touched
            FROM (SELECT DISTINCT r.subject AS s
                  FROM changed_rows c JOIN reports r ON r.id = c.report_id
                  WHERE r.subject IS NOT NULL
                  LIMIT 101) t;
            IF touched IS NULL THEN
                RETURN NULL;
            ELSIF array_length(touched, 1) > 100 THEN  -- named up to 100, else '*'
                PERFORM pg_notify('ledger_subjects', '*');
            ELSE
                PERFORM pg_notify('ledger_subjects', array_to_string(touched, ','));
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    for name, (event, transition) in EVENTS.items():
        op.execute(
            f"CREATE TRIGGER dispute_items_notify_{name} AFTER {event} ON dispute_items "
            f"REFERENCING {transition} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_notify_dispute_subjects()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in EVENTS:
        op.execute(f"DROP TRIGGER dispute_items_notify_{name} ON dispute_items")
    op.execute("DROP FUNCTION ledger_notify_dispute_subjects()")
