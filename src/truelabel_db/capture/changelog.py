"""Triggers that record every committed change to a legacy table in a changelog table.

Why triggers: SQLite has no replication log, and update hooks or the session extension see
only their own connection's writes, while the app writes from other processes. A trigger
runs inside the writer's own transaction, whoever the writer is, so a change and its
changelog row commit (or roll back) together. Trigger bodies use built-in SQL only: a
trigger calling a function registered by one connection would break every other connection.

The changelog records *which row* changed (table, key, upsert or delete), not its values:
the follower reads the row's current state when it applies the change, which is what makes
``INSERT OR REPLACE`` safe to follow (see :mod:`truelabel_db.capture` docs in the README).
A key change is recorded as the old key's delete and the new key's upsert.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from truelabel_db.legacy.schema import read_schema
from truelabel_db.legacy.source import connect, require_tables, translate_sqlite_error
from truelabel_db.schema.mapping import TABLES, TableMap
from truelabel_db.sqlite_sql import quote_ident, quote_literal

CHANGELOG_TABLE = "_truelabel_changelog"
STATE_TABLE = "_truelabel_capture"
TRIGGER_PREFIX = "_truelabel_"
NOW_MS = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"


def capture_ddl(tables: tuple[TableMap, ...] = TABLES) -> list[str]:
    """Every statement ``install`` runs, built from the mapping (``capture install --sql``)."""
    log = quote_ident(CHANGELOG_TABLE)
    statements = [
        f"CREATE TABLE IF NOT EXISTS {log} (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "tbl TEXT NOT NULL, op TEXT NOT NULL CHECK (op IN ('U', 'D', 'M')), pk TEXT, "
        f"at INTEGER NOT NULL DEFAULT ({NOW_MS}))",
        f"CREATE TABLE IF NOT EXISTS {quote_ident(STATE_TABLE)} (key TEXT PRIMARY KEY, value TEXT)",
    ]
    for table in tables:
        statements += _triggers(table, log)
    return statements


def _triggers(table: TableMap, log: str) -> list[str]:
    name, key, lit = quote_ident(table.legacy), quote_ident(table.legacy_key), quote_literal(table.legacy)
    into = f"INSERT INTO {log} (tbl, op, pk)"
    trig = lambda suffix: quote_ident(f"{TRIGGER_PREFIX}{table.legacy}_{suffix}")  # noqa: E731
    return [
        f"CREATE TRIGGER IF NOT EXISTS {trig('ins')} AFTER INSERT ON {name} BEGIN "
        f"{into} VALUES ({lit}, 'U', NEW.{key}); END",
        f"CREATE TRIGGER IF NOT EXISTS {trig('upd')} AFTER UPDATE ON {name} BEGIN "
        f"{into} SELECT {lit}, 'D', OLD.{key} WHERE OLD.{key} IS NOT NEW.{key}; "
        f"{into} VALUES ({lit}, 'U', NEW.{key}); END",
        f"CREATE TRIGGER IF NOT EXISTS {trig('del')} AFTER DELETE ON {name} BEGIN "
        f"{into} VALUES ({lit}, 'D', OLD.{key}); END",
    ]


@contextmanager
def write_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """A ``BEGIN IMMEDIATE`` transaction: waits (busy timeout) for the app, holds the lock briefly."""
    conn = connect(path, read_only=False)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise translate_sqlite_error(exc, path) from exc
    finally:
        conn.close()


def install_capture(path: Path) -> "CaptureStatus":
    """Create the changelog and the triggers in one ``BEGIN IMMEDIATE`` transaction.

    Safe while the app writes: the transaction waits (busy timeout) for the write lock, holds
    it for milliseconds, and the app's next write is already captured.
    """
    with write_lock(path) as conn:
        require_tables(read_schema(conn), [t.legacy for t in TABLES], path)
        for statement in capture_ddl():
            conn.execute(statement)
        record_schema_version(conn)
    return capture_status(path)


def record_schema_version(conn: sqlite3.Connection) -> None:
    """Remember the schema as it is after our own DDL, so that only the app's changes count."""
    version = conn.execute("PRAGMA schema_version").fetchone()[0]
    conn.execute(f"INSERT OR REPLACE INTO {quote_ident(STATE_TABLE)} VALUES ('schema_version', ?)",
                 (str(version),))


def remove_capture(path: Path, *, keep_changelog: bool = False) -> None:
    """Drop the triggers (and the changelog, unless asked to keep it), in one transaction."""
    with write_lock(path) as conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                    "AND name LIKE ? ESCAPE '!'", (_like_prefix(),)).fetchall():
            conn.execute(f"DROP TRIGGER IF EXISTS {quote_ident(name)}")
        if not keep_changelog:
            conn.execute(f"DROP TABLE IF EXISTS {quote_ident(CHANGELOG_TABLE)}")
            conn.execute(f"DROP TABLE IF EXISTS {quote_ident(STATE_TABLE)}")
            # SQLite keeps its sqlite_sequence table once created; our counter goes at least.
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
                conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (CHANGELOG_TABLE,))


def _like_prefix() -> str:
    return TRIGGER_PREFIX.replace("!", "!!").replace("_", "!_").replace("%", "!%") + "%"


@dataclass(frozen=True)
class CaptureStatus:
    installed: bool
    triggers: int
    expected_triggers: int
    pending_rows: int
    first_seq: int | None
    last_seq: int | None
    oldest_change_ms: int | None
    schema_version_at_install: int | None
    schema_version_now: int
    journal_mode: str

    @property
    def schema_changed(self) -> bool:
        return (self.schema_version_at_install is not None
                and self.schema_version_now != self.schema_version_at_install)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "schema_changed": self.schema_changed}


def capture_status(path: Path) -> CaptureStatus:
    conn = connect(path)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}
        triggers = sum(1 for n in names if n.startswith(TRIGGER_PREFIX) and n not in (CHANGELOG_TABLE, STATE_TABLE))
        installed = CHANGELOG_TABLE in names
        count = first = last = oldest = recorded = None
        if installed:
            count, first, last, oldest = conn.execute(
                f"SELECT count(*), min(seq), max(seq), min(at) FROM {quote_ident(CHANGELOG_TABLE)}").fetchone()
        if STATE_TABLE in names:
            row = conn.execute(f"SELECT value FROM {quote_ident(STATE_TABLE)} WHERE key = 'schema_version'").fetchone()
            recorded = int(row[0]) if row else None
        return CaptureStatus(installed, triggers, 3 * len(TABLES), int(count or 0), first, last, oldest,
                             recorded, conn.execute("PRAGMA schema_version").fetchone()[0],
                             conn.execute("PRAGMA journal_mode").fetchone()[0])
    except sqlite3.Error as exc:
        raise translate_sqlite_error(exc, path) from exc
    finally:
        conn.close()


def changelog_position(conn: sqlite3.Connection) -> int | None:
    """The last changelog sequence number visible to ``conn`` (None without capture)."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                          (CHANGELOG_TABLE,)).fetchone()
    if not exists:
        return None
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (CHANGELOG_TABLE,)).fetchone()
    return int(seq[0]) if seq else 0
