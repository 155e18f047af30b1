"""The sequencer's bookmark only moves forward, and never past an event not yet in the tree.

PostgreSQL only: there the service runs as a role that owns nothing (ledger/db_roles.py)
and may UPDATE this one audit table, so the database itself checks each change. On
SQLite the service owns the file, and nothing in the database can bind it.

Revision ID: 20261201_0009
Revises: 20261201_0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "20261201_0009"
down_revision: str | None = "20261201_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE FUNCTION ledger_floor_forward() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    previous bigint := CASE WHEN TG_OP = 'UPDATE' THEN OLD.floor_event_id ELSE 0 END;
BEGIN
    IF NEW.floor_event_id < previous THEN
        RAISE EXCEPTION 'the sequencer floor only moves forward (% to %)',
            previous, NEW.floor_event_id USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (
        SELECT 1 FROM audit_events e
        WHERE e.id > previous AND e.id <= NEW.floor_event_id
          AND NOT EXISTS (SELECT 1 FROM audit_leaves l WHERE l.event_id = e.id)
    ) THEN
        RAISE EXCEPTION 'the sequencer floor may not pass an event that is not in the tree'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    op.execute(
        "CREATE TRIGGER audit_sequencer_floor_forward BEFORE INSERT OR UPDATE ON audit_sequencer "
        "FOR EACH ROW EXECUTE FUNCTION ledger_floor_forward()"
    )
    op.execute(
        "CREATE TRIGGER audit_sequencer_no_delete BEFORE DELETE OR TRUNCATE ON audit_sequencer "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER audit_sequencer_no_delete ON audit_sequencer")
    op.execute("DROP TRIGGER audit_sequencer_floor_forward ON audit_sequencer")
    op.execute("DROP FUNCTION ledger_floor_forward()")
