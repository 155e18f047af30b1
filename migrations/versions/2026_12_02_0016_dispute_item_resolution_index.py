"""Dispute items by resolution and time: the dashboard counts open items and recent
unanswered ones without reading every dispute ever opened.

Revision ID: 20261202_0016
Revises: 20261202_0015
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "20261202_0016"
down_revision: str | None = "20261202_0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_dispute_items_resolution", "dispute_items", ["resolution", "resolved_at"])


def downgrade() -> None:
    op.drop_index("ix_dispute_items_resolution", table_name="dispute_items")
