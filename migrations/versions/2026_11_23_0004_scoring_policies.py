"""Scoring policies: a versioned, append-only history.

Revision ID: 20261123_0004
Revises: 20261123_0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261123_0004"
down_revision: str | None = "20261123_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scoring_policies",
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_scoring_policies")),
    )
    op.create_index(op.f("ix_scoring_policies_created_at"), "scoring_policies", ["created_at"])
    # A version, once in force, is never changed (PostgreSQL's function comes from 0002).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER scoring_policies_append_only BEFORE UPDATE OR DELETE ON "
            "scoring_policies FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER scoring_policies_no_{action.lower()} BEFORE {action} ON "
                "scoring_policies BEGIN SELECT RAISE(ABORT, 'table scoring_policies is "
                f"append-only: {action} is refused'); END"
            )


def downgrade() -> None:
    op.drop_index(op.f("ix_scoring_policies_created_at"), table_name="scoring_policies")
    op.drop_table("scoring_policies")
