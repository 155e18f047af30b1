"""Members have a display name in any script (京东) beside their ASCII short name.

The short name (``name``) stays what the CLI and the API use; the display name is what
the console, exports and the buyer's file show. Existing members get their short name.

Revision ID: 20261202_0013
Revises: 20261202_0012
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261202_0013"
down_revision: str | None = "20261202_0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("members", sa.Column("display_name", sa.String(100), nullable=True))
    op.execute("UPDATE members SET display_name = name")
    with op.batch_alter_table("members") as batch:
        batch.alter_column("display_name", existing_type=sa.String(100), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.drop_column("display_name")
