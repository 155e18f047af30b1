"""Whole-log verifications run as jobs: one at a time, their progress kept as they go.

A run is started from the console or by ``ledger audit verify``; either way it holds
the one ``running`` row (a partial unique index), writes how far it has got every
second or so, and ends ``done`` (with its result) or ``failed``. A run whose process
died stops writing; once its heartbeat is old, the next run may take over.

Revision ID: 20261202_0015
Revises: 20261202_0014
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261202_0015"
down_revision: str | None = "20261202_0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "verification_runs",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_by", sa.String(100), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("total", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("ok", sa.Boolean(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("audit_event_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_runs")),
    )
    op.create_index(
        "uq_verification_runs_one_running",
        "verification_runs",
        ["state"],
        unique=True,
        postgresql_where=sa.text("state = 'running'"),
        sqlite_where=sa.text("state = 'running'"),
    )
    op.create_index(op.f("ix_verification_runs_started_at"), "verification_runs", ["started_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_verification_runs_started_at"), table_name="verification_runs")
    op.drop_index("uq_verification_runs_one_running", table_name="verification_runs")
    op.drop_table("verification_runs")
