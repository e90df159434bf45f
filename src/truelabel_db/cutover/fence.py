"""The fence: triggers that make every write to the old SQLite primary fail loudly.

An app that honours the gate never needs it. One that does not (a forgotten cron job, a
second deployment) would otherwise keep writing into a database that is no longer the primary
and lose those writes silently; with the fence, its INSERT, UPDATE or DELETE aborts with a
message that says where to write instead. Built-in SQL only, like the capture triggers.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from truelabel_db.capture.changelog import write_lock
from truelabel_db.catalog import changelog
from truelabel_db.sqlite_sql import quote_ident, quote_literal

FENCE_PREFIX = "_truelabel_fence_"
MESSAGE = "truelabel: this SQLite database is no longer the primary; write to PostgreSQL"


def app_tables(conn: sqlite3.Connection) -> list[str]:
    """Every table the app can write: mapped, carried, ignored or unknown alike (never our own)."""
    return [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            if not name.startswith(("sqlite_", "_truelabel_"))]


def fence_ddl(tables: list[str]) -> list[str]:
    statements = []
    for table in tables:
        for event in ("INSERT", "UPDATE", "DELETE"):
            name = quote_ident(f"{FENCE_PREFIX}{table}_{event.lower()}")
            statements.append(
                f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {event} ON {quote_ident(table)} "
                f"BEGIN SELECT RAISE(ABORT, {quote_literal(MESSAGE)}); END")
    return statements


def install_fence(path: Path) -> None:
    with write_lock(path) as conn:
        for statement in fence_ddl(app_tables(conn)):
            conn.execute(statement)
        if has_capture(conn):
            changelog.record_schema_version(conn)


def remove_fence(path: Path) -> None:
    with write_lock(path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                 if r[0].startswith(FENCE_PREFIX)]
        for name in names:
            conn.execute(f"DROP TRIGGER IF EXISTS {quote_ident(name)}")
        if has_capture(conn):
            changelog.record_schema_version(conn)


def remove_fence_unless_switched(path: Path, target_url: str) -> None:
    """``fence remove``: only while SQLite is still the recorded primary (an interrupted cutover)."""
    from truelabel_db import guard
    from truelabel_db.postgres import connect

    with connect(target_url, autocommit=True) as conn:
        guard.opening_sqlite(conn, path, "fence remove")
    remove_fence(path)


def has_capture(conn: sqlite3.Connection) -> bool:
    return changelog.has_state(conn)


def fence_installed(path: Path) -> bool:
    from truelabel_db.legacy.source import reading

    with reading(path) as conn:
        count = sum(1 for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                    if r[0].startswith(FENCE_PREFIX))
        return count == 3 * len(app_tables(conn))
