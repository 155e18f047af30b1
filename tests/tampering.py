"""Changing the database behind the ledger's back, as an attacker with access would."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import asyncpg
from sqlalchemy.engine import make_url

TRIGGERS = [
    f"audit_{table}_no_{action}"
    for table in ("events", "leaves", "nodes", "checkpoints", "cosignatures")
    for action in ("update", "delete")
]


async def tamper(database_url: str, statements: Sequence[str]) -> None:
    """Change the database behind the ledger's back, triggers and foreign keys off."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(url.database))
        try:
            conn.execute("PRAGMA foreign_keys=OFF")
            for trigger in TRIGGERS:
                conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
            for statement in statements:
                conn.execute(statement)
            conn.commit()
        finally:
            conn.close()
        return
    pg = await asyncpg.connect(
        url.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        await pg.execute("SET session_replication_role = replica")  # no triggers, no FKs
        for statement in statements:
            await pg.execute(statement)
    finally:
        await pg.close()
