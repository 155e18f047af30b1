"""Lists page on an index: a member's reports by state, and by category, in id order.

Revision ID: 20261201_0007
Revises: 20261123_0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "20261201_0007"
down_revision: str | None = "20261123_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_reports_member_state_id", "reports", ["member_id", "state", "id"])
    op.create_index("ix_reports_member_category_id", "reports", ["member_id", "category", "id"])


def downgrade() -> None:
    op.drop_index("ix_reports_member_category_id", table_name="reports")
    op.drop_index("ix_reports_member_state_id", table_name="reports")
