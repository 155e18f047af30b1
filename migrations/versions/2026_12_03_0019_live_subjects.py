"""Notify listeners of the subjects a change to reports or markers touched (PostgreSQL only).

Each server process keeps the subjects that may count in memory (ledger/scoring/live.py)
and answers everyone else without a read. These triggers fire once per statement, in the
changing transaction, and PostgreSQL delivers the notification when it commits. The
payload is the touched subjects (pseudonyms), comma-separated; a statement touching more
than 100 of them (a bulk load) sends ``*`` instead, and the listeners read the whole set
again. SQLite has no notifications; servers on SQLite read every query.

Revision ID: 20261203_0019
Revises: 20261202_0018
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "20261203_0019"
down_revision: str | None = "20261202_0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("reports", "protective_markers")
EVENTS = {
    "insert": ("INSERT", "NEW TABLE AS new_rows"),
    "update": ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    "delete": ("DELETE", "OLD TABLE AS old_rows"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION ledger_notify_subjects() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            touched varchar[];
        BEGIN
            IF TG_OP = 'INSERT' THEN
                SELECT array_agg(s) INTO touched
                FROM (SELECT DISTINCT subject AS s FROM new_rows WHERE subject IS NOT NULL
                      LIMIT 101) t;
            ELSIF TG_OP = 'UPDATE' THEN
                SELECT array_agg(s) INTO touched
                FROM (SELECT subject AS s FROM new_rows WHERE subject IS NOT NULL
                      UNION SELECT subject FROM old_rows WHERE subject IS NOT NULL
                      LIMIT 101) t;
            ELSE
                SELECT array_agg(s) INTO touched
                FROM (SELECT DISTINCT subject AS s FROM old_rows WHERE subject IS NOT NULL
                      LIMIT 101) t;
            END IF;
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
    for table in TABLES:
        for name, (event, transition) in EVENTS.items():
            op.execute(
                f"CREATE TRIGGER {table}_notify_{name} AFTER {event} ON {table} "
                f"REFERENCING {transition} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ledger_notify_subjects()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        for name in EVENTS:
            op.execute(f"DROP TRIGGER {table}_notify_{name} ON {table}")
    op.execute("DROP FUNCTION ledger_notify_subjects()")
