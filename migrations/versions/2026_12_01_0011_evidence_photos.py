"""Evidence fingerprints: the photos behind reports, and members' listing photos.

Revision ID: 20261201_0011
Revises: 20261201_0010
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261201_0011"
down_revision: str | None = "20261201_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "evidence_photos",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(length=32), nullable=False),
        sa.Column("quality", sa.SmallInteger(), nullable=False),
        sa.Column("provenance", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_evidence_photos_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_evidence_photos_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_photos")),
    )
    op.create_index(
        op.f("ix_evidence_photos_report_id"), "evidence_photos", ["report_id"], unique=False
    )
    op.create_index(
        op.f("ix_evidence_photos_created_at"), "evidence_photos", ["created_at"], unique=False
    )
    op.create_table(
        "listing_photos",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(length=32), nullable=False),
        sa.Column("quality", sa.SmallInteger(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_listing_photos_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listing_photos")),
        sa.UniqueConstraint(
            "member_id", "reference", "fingerprint", name="uq_listing_photos_member_ref_fp"
        ),
    )
    op.create_index(
        "ix_listing_photos_member_reference",
        "listing_photos",
        ["member_id", "reference"],
        unique=False,
    )
    op.create_index(
        op.f("ix_listing_photos_registered_at"), "listing_photos", ["registered_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_listing_photos_registered_at"), table_name="listing_photos")
    op.drop_index("ix_listing_photos_member_reference", table_name="listing_photos")
    op.drop_table("listing_photos")
    op.drop_index(op.f("ix_evidence_photos_created_at"), table_name="evidence_photos")
    op.drop_index(op.f("ix_evidence_photos_report_id"), table_name="evidence_photos")
    op.drop_table("evidence_photos")
