"""Reading one batch of the changelog, and the current state of the rows it names.

Both are read in one SQLite read transaction: the rows are at least as new as the batch, and
any later change to them is further down the changelog, so applying "make the target equal
to the current row" in order converges on SQLite's state. Several changes to one row in a
batch collapse into its last one.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from truelabel_db.capture.changelog import CHANGELOG_TABLE, STATE_TABLE
from truelabel_db.copy.reader import fetch_by_keys
from truelabel_db.errors import SourceError
from truelabel_db.schema.mapping import BY_LEGACY, TableMap
from truelabel_db.sqlite_sql import quote_ident


@dataclass
class TableChanges:
    upserts: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # legacy key -> current row
    deletes: set[str] = field(default_factory=set)


@dataclass
class Batch:
    first_seq: int
    last_seq: int
    changes: int
    oldest_at_ms: int
    tables: dict[str, TableChanges]
    markers: list[str]


class SchemaChanged(SourceError):
    """The legacy schema moved under the triggers: following on would miss columns."""


def read_batch(conn: sqlite3.Connection, after: int, limit: int) -> Batch | None:
    """The next ``limit`` changes after position ``after`` with their rows; None if caught up."""
    conn.execute("BEGIN")
    try:
        _check_schema(conn)
        rows = conn.execute(f"SELECT seq, tbl, op, pk, at FROM {quote_ident(CHANGELOG_TABLE)} "
                            "WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)).fetchall()
        if not rows:
            return None
        last: dict[tuple[str, str], str] = {}
        markers = []
        for _, table, op, key, _ in rows:
            if op == "M":
                markers.append(str(key))
            elif table in BY_LEGACY:
                last[(table, str(key))] = op
        tables: dict[str, TableChanges] = {}
        for (table, key), op in last.items():
            changes = tables.setdefault(table, TableChanges())
            if op == "D":
                changes.deletes.add(key)
            else:
                changes.upserts[key] = ()
        for table, changes in tables.items():
            fetch_current(conn, table, changes)
        return Batch(rows[0][0], rows[-1][0], len(rows), min(r[4] for r in rows), tables, markers)
    finally:
        conn.execute("COMMIT")


def _check_schema(conn: sqlite3.Connection) -> None:
    row = conn.execute(f"SELECT value FROM {quote_ident(STATE_TABLE)} WHERE key = 'schema_version'").fetchone()
    now = conn.execute("PRAGMA schema_version").fetchone()[0]
    if row is not None and int(row[0]) != now:
        raise SchemaChanged(
            f"the legacy schema changed since capture was installed (schema_version {row[0]} → {now}); "
            "following on could miss columns: review the change, update the mapping, "
            "re-install capture and copy again")


def fetch_current(conn: sqlite3.Connection, table: str, changes: TableChanges) -> None:
    """Fill in each upserted key's current row; a key whose row is gone becomes a delete."""
    found = fetch_by_keys(conn, BY_LEGACY[table], list(changes.upserts))
    conn.text_factory = str
    for key in list(changes.upserts):
        if key in found:
            changes.upserts[key] = found[key]
        else:
            del changes.upserts[key]
            changes.deletes.add(key)


def keys_present(conn: sqlite3.Connection, table: TableMap, keys: list[str]) -> set[str]:
    """Which of ``keys`` (canonical target keys) still have a row in the legacy table."""
    if not keys:
        return set()
    column = quote_ident(table.legacy_key)
    marks = ", ".join("?" * len(keys))
    rows = conn.execute(f"SELECT lower({column}) FROM {quote_ident(table.legacy)} "
                        f"WHERE lower({column}) IN ({marks})", [k.lower() for k in keys])
    return {str(r[0]) for r in rows}
