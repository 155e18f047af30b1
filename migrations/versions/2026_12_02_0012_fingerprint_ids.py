"""Fingerprint ids are never reused; the timestamp indexes the old refresh read go.

Each server's index now reads new rows by id (ids above the highest it has read, and
the gaps below it: ledger/evidence/upkeep.py), so an id must never be given twice. On
PostgreSQL a sequence never does; SQLite reuses the highest rowid once its row is
deleted (a report's photos are, at retention) unless the table is AUTOINCREMENT.

Revision ID: 20261202_0012
Revises: 20261201_0011
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "20261202_0012"
down_revision: str | None = "20261201_0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAMPS = {"evidence_photos": "created_at", "listing_photos": "registered_at"}


def _recreate(table: str, *, autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass


def upgrade() -> None:
    for table, stamp in STAMPS.items():
        op.drop_index(op.f(f"ix_{table}_{stamp}"), table_name=table)
        _recreate(table, autoincrement=True)


def downgrade() -> None:
    for table, stamp in STAMPS.items():
        _recreate(table, autoincrement=False)
        op.create_index(op.f(f"ix_{table}_{stamp}"), table, [stamp], unique=False)
