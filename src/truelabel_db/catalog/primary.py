"""Which database is the primary for a legacy file (``truelabel_meta.primary_state``).

The cutover records PostgreSQL here in the transaction that switches, the rollback records
SQLite; the migration's tools read it before they write. A row read ``FOR SHARE`` inside a
writer's transaction makes a concurrent switch wait for that writer, and the writer see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from truelabel_db.postgres import one

SQLITE, POSTGRESQL = "sqlite", "postgresql"


@dataclass(frozen=True)
class PrimaryState:
    primary: str
    epoch: int
    reason: str | None
    changed_at: datetime | None


def current(conn: psycopg.Connection | psycopg.Cursor[Any], source_path: str, *,
            lock: bool = False) -> PrimaryState:
    """The recorded primary (SQLite, until a cutover says otherwise); ``lock``: FOR SHARE."""
    if not one(conn.execute("SELECT to_regclass('truelabel_meta.primary_state') IS NOT NULL"))[0]:
        return PrimaryState(SQLITE, 0, None, None)  # a database no migration has touched yet
    row = conn.execute("SELECT primary_db, epoch, reason, changed_at FROM truelabel_meta.primary_state "
                       "WHERE source_path = %s" + (" FOR SHARE" if lock else ""), (source_path,)).fetchone()
    return PrimaryState(*row) if row else PrimaryState(SQLITE, 0, None, None)


def any_postgresql(conn: psycopg.Connection) -> list[str]:
    """Legacy files whose primary is now PostgreSQL."""
    if not one(conn.execute("SELECT to_regclass('truelabel_meta.primary_state') IS NOT NULL"))[0]:
        return []
    return [r[0] for r in conn.execute("SELECT source_path FROM truelabel_meta.primary_state "
                                       "WHERE primary_db = 'postgresql' ORDER BY source_path")]


def switch(cur: psycopg.Cursor[Any] | psycopg.Connection, source_path: str, primary: str, reason: str) -> int:
    """Record a new primary inside the caller's transaction; returns the new epoch."""
    cur.execute("SELECT 1 FROM truelabel_meta.primary_state WHERE source_path = %s FOR UPDATE", (source_path,))
    row = one(cur.execute(
        "INSERT INTO truelabel_meta.primary_state (source_path, primary_db, reason) VALUES (%s, %s, %s) "
        "ON CONFLICT (source_path) DO UPDATE SET primary_db = EXCLUDED.primary_db, reason = EXCLUDED.reason, "
        "epoch = truelabel_meta.primary_state.epoch + 1, changed_at = now() RETURNING epoch",
        (source_path, primary, reason)))
    return int(row[0])
