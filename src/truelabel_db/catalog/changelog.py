"""The SQLite changelog's format: the one place that knows its table, columns and marker.

The capture triggers append ``(tbl, op, pk)`` rows to ``_truelabel_changelog`` inside the app's
own transactions; ``seq`` is an AUTOINCREMENT key, so it only grows and a position is a plain
integer; ``at`` is the commit-time clock in epoch milliseconds (for lag). ``op`` is ``U``
(make the target row equal to SQLite's current row), ``D`` (the row is gone) or ``M`` (a
marker, written by the cutover under the write lock: when the follower has applied it, every
change before it is applied). ``_truelabel_capture`` holds capture's own settings, such as the
``PRAGMA schema_version`` the triggers were installed against.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from truelabel_db.sqlite_sql import quote_ident, quote_literal

CHANGELOG_TABLE = "_truelabel_changelog"
STATE_TABLE = "_truelabel_capture"
NOW_MS = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
UPSERT, DELETE, MARKER = "U", "D", "M"

_LOG = quote_ident(CHANGELOG_TABLE)
_STATE = quote_ident(STATE_TABLE)


@dataclass(frozen=True)
class Entry:
    seq: int
    table: str
    op: str
    key: str | None
    at_ms: int


def ddl() -> list[str]:
    """The changelog and capture's settings table (``CREATE ... IF NOT EXISTS``)."""
    return [
        f"CREATE TABLE IF NOT EXISTS {_LOG} (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "tbl TEXT NOT NULL, op TEXT NOT NULL CHECK (op IN ('U', 'D', 'M')), pk TEXT, "
        f"at INTEGER NOT NULL DEFAULT ({NOW_MS}))",
        f"CREATE TABLE IF NOT EXISTS {_STATE} (key TEXT PRIMARY KEY, value TEXT)",
    ]


def drop_ddl() -> list[str]:
    return [f"DROP TABLE IF EXISTS {_LOG}", f"DROP TABLE IF EXISTS {_STATE}"]


def append_sql(table: str, op: str, key_expr: str, *, when: str | None = None, rows_of: str | None = None) -> str:
    """A trigger-body statement appending an entry (``key_expr`` is ``NEW.col`` or ``OLD.col``),
    or one per row of ``rows_of`` (a quoted table) that ``when`` selects."""
    into = f"INSERT INTO {_LOG} (tbl, op, pk)"
    if when is None:
        return f"{into} VALUES ({quote_literal(table)}, {quote_literal(op)}, {key_expr})"
    source = f" FROM {rows_of}" if rows_of else ""
    return f"{into} SELECT {quote_literal(table)}, {quote_literal(op)}, {key_expr}{source} WHERE {when}"


def exists(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                        (CHANGELOG_TABLE,)).fetchone() is not None


def read_after(conn: sqlite3.Connection, position: int, limit: int) -> list[Entry]:
    rows = conn.execute(f"SELECT seq, tbl, op, pk, at FROM {_LOG} WHERE seq > ? ORDER BY seq LIMIT ?",
                        (position, limit)).fetchall()
    return [Entry(int(r[0]), str(r[1]), str(r[2]), None if r[3] is None else str(r[3]), int(r[4])) for r in rows]


def end(conn: sqlite3.Connection) -> int:
    """The newest entry's sequence number (0 when empty)."""
    return int(conn.execute(f"SELECT coalesce(max(seq), 0) FROM {_LOG}").fetchone()[0])


def end_and_now_ms(conn: sqlite3.Connection) -> tuple[int, int]:
    """The newest sequence number and SQLite's clock, read together (lag in rows and in time)."""
    row = conn.execute(f"SELECT coalesce(max(seq), 0), {NOW_MS} FROM {_LOG}").fetchone()
    return int(row[0]), int(row[1])


def position_in_snapshot(conn: sqlite3.Connection) -> int | None:
    """The last sequence number ever issued in this file as ``conn`` sees it (None without capture).

    Read from ``sqlite_sequence``, not ``max(seq)``: trimmed entries still count.
    """
    if not exists(conn):
        return None
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (CHANGELOG_TABLE,)).fetchone()
    return int(seq[0]) if seq else 0


def append_marker(conn: sqlite3.Connection, name: str) -> int:
    """A marker entry; the caller holds the write lock. Returns its sequence number."""
    return int(conn.execute(f"INSERT INTO {_LOG} (tbl, op, pk) VALUES ('*', 'M', ?) RETURNING seq",
                            (name,)).fetchone()[0])


def trim(conn: sqlite3.Connection, upto: int) -> int:
    """Delete entries up to ``upto`` (applied ones); the caller holds the write lock."""
    return int(conn.execute(f"DELETE FROM {_LOG} WHERE seq <= ?", (upto,)).rowcount)


def keys_after(conn: sqlite3.Connection, position: int = 0) -> dict[str, set[str]]:
    """Every table's keys that entries after ``position`` name (markers left out)."""
    out: dict[str, set[str]] = {}
    for table, key in conn.execute(f"SELECT DISTINCT tbl, pk FROM {_LOG} WHERE seq > ? AND op <> 'M'",
                                   (position,)):
        out.setdefault(str(table), set()).add(str(key))
    return out


@dataclass(frozen=True)
class Extent:
    rows: int
    first_seq: int | None
    last_seq: int | None
    oldest_ms: int | None


def extent(conn: sqlite3.Connection) -> Extent:
    count, first, last, oldest = conn.execute(f"SELECT count(*), min(seq), max(seq), min(at) FROM {_LOG}").fetchone()
    return Extent(int(count or 0), first, last, oldest)


def forget_sequence(conn: sqlite3.Connection) -> None:
    """After dropping the changelog: its AUTOINCREMENT counter goes too."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
        conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (CHANGELOG_TABLE,))


def has_state(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (STATE_TABLE,)).fetchone() is not None


def setting(conn: sqlite3.Connection, key: str) -> str | None:
    if not has_state(conn):
        return None
    row = conn.execute(f"SELECT value FROM {_STATE} WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_setting(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(f"INSERT OR REPLACE INTO {_STATE} VALUES (?, ?)", (key, value))


def record_schema_version(conn: sqlite3.Connection) -> None:
    """Remember the schema as it is after our own DDL, so that only the app's changes count."""
    set_setting(conn, "schema_version", str(conn.execute("PRAGMA schema_version").fetchone()[0]))


def recorded_schema_version(conn: sqlite3.Connection) -> int | None:
    value = setting(conn, "schema_version")
    return None if value is None else int(value)
