"""Witnesses' cosignatures of checkpoints, append-only like the rest of the audit log.

Revision ID: 20261201_0010
Revises: 20261201_0009
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261201_0010"
down_revision: str | None = "20261201_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_cosignatures",
        sa.Column("tree_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("witness", sa.String(length=255), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tree_size", "witness", name=op.f("pk_audit_cosignatures")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_cosignatures_append_only BEFORE UPDATE OR DELETE ON "
            "audit_cosignatures FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
        )
        op.execute(
            "CREATE TRIGGER audit_cosignatures_no_truncate BEFORE TRUNCATE ON "
            "audit_cosignatures FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()"
        )
        return
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_cosignatures_no_{action.lower()} BEFORE {action} ON "
            "audit_cosignatures BEGIN SELECT RAISE(ABORT, "
            f"'table audit_cosignatures is append-only: {action} is refused'); END"
        )


def downgrade() -> None:
    op.drop_table("audit_cosignatures")
