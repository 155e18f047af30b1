"""Two database roles on PostgreSQL: one owns the schema, the other runs the service.

The append-only triggers on the audit tables bind the service only if it cannot switch
them off. A table's owner can (``ALTER TABLE … DISABLE TRIGGER``, ``CREATE OR REPLACE
FUNCTION``), and so can a superuser. So the tables and trigger functions belong to a
*migration role*, used only by ``ledger db upgrade`` and ``ledger init``
(``LEDGER_MIGRATION_DATABASE_URL``). The *service role* (``LEDGER_DATABASE_URL``) owns
nothing and holds only the privileges below: on the append-only tables, SELECT and
INSERT. The sequencer's bookmark may be updated, and a trigger lets it move only forward
over integrated events.

``SERVICE_PRIVILEGES`` is the one table of what the service may do. ``grant`` applies
it after every migration, and it revokes whatever else the role held. A test fails if a
table in the models is missing here.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

READ_APPEND = ("SELECT", "INSERT")
READ_WRITE = ("SELECT", "INSERT", "UPDATE", "DELETE")

SERVICE_PRIVILEGES: dict[str, tuple[str, ...]] = {
    # Append-only: the database refuses UPDATE and DELETE, and the service may not try.
    "audit_events": READ_APPEND,
    "audit_leaves": READ_APPEND,
    "audit_nodes": READ_APPEND,
    "audit_checkpoints": READ_APPEND,
    "audit_cosignatures": READ_APPEND,
    "report_actions": READ_APPEND,
    "scoring_policies": READ_APPEND,
    # The sequencer's bookmark: forward only, over integrated events (a trigger).
    "audit_sequencer": ("SELECT", "INSERT", "UPDATE"),
    # The service checks the schema's revision at start; only migrations change it.
    "alembic_version": ("SELECT",),
    "members": READ_WRITE,
    "clients": READ_WRITE,
    "users": READ_WRITE,
    "recovery_codes": READ_WRITE,
    "console_sessions": READ_WRITE,
    "reports": READ_WRITE,
    "report_statements": READ_WRITE,
    "idempotency_keys": READ_WRITE,
    "disputes": READ_WRITE,
    "dispute_items": READ_WRITE,
    "rate_limit_counters": READ_WRITE,
    "evidence_photos": READ_WRITE,
    "listing_photos": READ_WRITE,
    "verification_runs": READ_WRITE,
    "webhook_endpoints": READ_WRITE,
    "webhook_events": READ_WRITE,
    "webhook_deliveries": READ_WRITE,
    "webhook_attempts": READ_WRITE,
    # A marker is renewed or removed, never deleted: its history is the buyer's.
    "protective_markers": ("SELECT", "INSERT", "UPDATE"),
}


def role_of(url: str) -> str | None:
    """The role a database URL connects as."""
    return make_url(url).username


def grant(conn: Connection, role: str) -> None:
    """Give ``role`` exactly ``SERVICE_PRIVILEGES`` on the tables that exist, and
    nothing else (PostgreSQL only; run by the migration role)."""
    quoted = conn.dialect.identifier_preparer.quote(role)
    conn.exec_driver_sql(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {quoted}")
    conn.exec_driver_sql(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {quoted}")
    conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {quoted}")
    tables = conn.scalars(
        sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    ).all()
    for table in tables:
        privileges = SERVICE_PRIVILEGES.get(table)
        if privileges:
            conn.exec_driver_sql(
                f"GRANT {', '.join(privileges)} ON TABLE "
                f"{conn.dialect.identifier_preparer.quote(table)} TO {quoted}"
            )
    # Ids come from sequences (audit events); using one is not changing history.
    conn.exec_driver_sql(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}")


def service_role_problem(conn: Connection) -> str | None:
    """Why the connected role should not run the service, or None (PostgreSQL)."""
    superuser = conn.scalar(sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
    if superuser:
        return "it is a superuser, which may disable any trigger"
    owned = conn.scalar(
        sa.text(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
            "AND tableowner = current_user"
        )
    )
    if owned:
        return "it owns the ledger's tables, so it may disable their append-only triggers"
    return None
