"""A second factor for console users: TOTP (RFC 6238) and one-time recovery codes.

``users.totp_secret`` is the sealed secret in use (ledger/members/sealing.py),
``totp_pending_secret`` one being set up and not yet confirmed with a code, and
``totp_last_step`` the time step of the last code accepted, so that no code is
accepted twice (RFC 6238 §5.2). ``recovery_codes`` keeps argon2id hashes, each found
by the short public prefix the code starts with. A console session opened with the
password alone ``awaits`` the second factor and grants nothing until then.

Revision ID: 20261202_0017
Revises: 20261202_0016
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261202_0017"
down_revision: str | None = "20261202_0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_secret", sa.String(255)))
        batch.add_column(sa.Column("totp_pending_secret", sa.String(255)))
        batch.add_column(sa.Column("totp_enabled_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger()))
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("lookup", sa.String(8), nullable=False),
        sa.Column("code_hash", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_recovery_codes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
        sa.UniqueConstraint("user_id", "lookup", name="uq_recovery_codes_user_lookup"),
    )
    with op.batch_alter_table("console_sessions") as batch:
        batch.add_column(sa.Column("awaiting", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("console_sessions") as batch:
        batch.drop_column("awaiting")
    op.drop_table("recovery_codes")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_enabled_at")
        batch.drop_column("totp_pending_secret")
        batch.drop_column("totp_secret")
