"""Notify listeners when a client or member changes (PostgreSQL only).

Servers cache which clients are active and drop that cache on a ``ledger_access``
notification (ledger/access/state_cache.py). The triggers fire per statement, in the
changing transaction; PostgreSQL delivers the notification when it commits. Only
columns that decide access fire them: a token being issued (``last_used_at``) does not.
SQLite has no notifications; servers on SQLite do not cache.

Revision ID: 20261123_0005
Revises: 20261123_0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "20261123_0005"
down_revision: str | None = "20261123_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGERS = {
    "clients": "UPDATE OF revoked_at, member_id, scopes OR DELETE",
    "members": "UPDATE OF status OR DELETE",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION ledger_notify_access() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('ledger_access', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
        """
    )
    for table, events in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {table}_notify_access AFTER {events} ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_notify_access()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TRIGGERS:
        op.execute(f"DROP TRIGGER {table}_notify_access ON {table}")
    op.execute("DROP FUNCTION ledger_notify_access()")
