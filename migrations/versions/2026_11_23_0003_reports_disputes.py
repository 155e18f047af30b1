"""Reports, their history and statements, idempotency keys, disputes.

Revision ID: 20261123_0003
Revises: 20261123_0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261123_0003"
down_revision: str | None = "20261123_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "disputes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.String(length=43), nullable=True),
        sa.Column("opened_by", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["opened_by"], ["members.id"], name=op.f("fk_disputes_opened_by_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disputes")),
    )
    with op.batch_alter_table("disputes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_disputes_subject"), ["subject"], unique=False)

    op.create_table(
        "idempotency_keys",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_idempotency_keys_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", "key", name="pk_idempotency_keys"),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("case_ref", sa.String(length=64), nullable=True),
        sa.Column("subject", sa.String(length=43), nullable=True),
        sa.Column(
            "category",
            sa.Enum(
                "forged_evidence",
                "empty_box",
                "wardrobing",
                "false_non_receipt",
                "other",
                name="report_category",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column(
            "basis",
            sa.Enum(
                "platform_review",
                "merchant_evidence",
                "arbitration",
                "court_ruling",
                "police_report",
                name="report_basis",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "active",
                "withdrawn",
                "suppressed",
                "purged",
                name="report_state",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("audit_event_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_reports_amount_positive")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_reports_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("member_id", "case_ref", name="uq_reports_member_case_ref"),
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index("ix_reports_expires_at", ["expires_at"], unique=False)
        batch_op.create_index("ix_reports_member_filed", ["member_id", "filed_at"], unique=False)
        batch_op.create_index("ix_reports_subject", ["subject"], unique=False)

    op.create_table(
        "dispute_items",
        sa.Column("dispute_id", sa.Uuid(), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("reporting_member_id", sa.Uuid(), nullable=False),
        sa.Column(
            "resolution",
            sa.Enum(
                "open",
                "upheld",
                "withdrawn",
                "unverifiable",
                name="dispute_resolution",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("reason_code", sa.String(length=64), nullable=True),
        sa.Column("evidence_sha256", sa.String(length=64), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["dispute_id"], ["disputes.id"], name=op.f("fk_dispute_items_dispute_id_disputes")
        ),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name=op.f("fk_dispute_items_report_id_reports")
        ),
        sa.ForeignKeyConstraint(
            ["reporting_member_id"],
            ["members.id"],
            name=op.f("fk_dispute_items_reporting_member_id_members"),
        ),
        sa.PrimaryKeyConstraint("dispute_id", "report_id", name="pk_dispute_items"),
    )
    with op.batch_alter_table("dispute_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_dispute_items_assignee", ["reporting_member_id", "resolution"], unique=False
        )
        batch_op.create_index("ix_dispute_items_report", ["report_id"], unique=False)

    op.create_table(
        "report_actions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("evidence_sha256", sa.String(length=64), nullable=True),
        sa.Column("dispute_id", sa.Uuid(), nullable=True),
        sa.Column("member_id", sa.Uuid(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name=op.f("fk_report_actions_report_id_reports")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_actions")),
    )
    with op.batch_alter_table("report_actions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_report_actions_report_id"), ["report_id"], unique=False
        )

    op.create_table(
        "report_statements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.String(length=200), nullable=False),
        sa.Column("via_member_id", sa.Uuid(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name=op.f("fk_report_statements_report_id_reports")
        ),
        sa.ForeignKeyConstraint(
            ["via_member_id"],
            ["members.id"],
            name=op.f("fk_report_statements_via_member_id_members"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_statements")),
    )
    with op.batch_alter_table("report_statements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_report_statements_report_id"), ["report_id"], unique=False
        )

    # A report's history is never rewritten (PostgreSQL's function comes from 0002).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER report_actions_append_only BEFORE UPDATE OR DELETE ON report_actions "
            "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER report_actions_no_{action.lower()} BEFORE {action} ON "
                "report_actions BEGIN SELECT RAISE(ABORT, 'table report_actions is "
                f"append-only: {action} is refused'); END"
            )


def downgrade() -> None:
    with op.batch_alter_table("report_statements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_statements_report_id"))

    op.drop_table("report_statements")
    with op.batch_alter_table("report_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_actions_report_id"))

    op.drop_table("report_actions")
    with op.batch_alter_table("dispute_items", schema=None) as batch_op:
        batch_op.drop_index("ix_dispute_items_report")
        batch_op.drop_index("ix_dispute_items_assignee")

    op.drop_table("dispute_items")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_subject")
        batch_op.drop_index("ix_reports_member_filed")
        batch_op.drop_index("ix_reports_expires_at")

    op.drop_table("reports")
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("disputes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disputes_subject"))

    op.drop_table("disputes")
