"""Reading legacy rows by key: the current state of the rows a change or a check names.

Keys are the legacy table's primary key as SQLite stores it (the changelog records them so).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from truelabel_db.rows.changes import TableChanges
from truelabel_db.schema.mapping import TableMap
from truelabel_db.schema.transforms import decode_text
from truelabel_db.sqlite_sql import quote_ident


def fetch_by_keys(conn: sqlite3.Connection, table: TableMap,
                  keys: list[str]) -> dict[str, tuple[Any, ...]]:
    """Original legacy rows by primary key (for rows quarantined after the load)."""
    if not keys:
        return {}
    conn.text_factory = decode_text
    columns = table.legacy_select()
    key = quote_ident(table.legacy_key)
    out: dict[str, tuple[Any, ...]] = {}
    for start in range(0, len(keys), 500):
        batch = keys[start:start + 500]
        marks = ", ".join("?" * len(batch))
        for row in conn.execute(f"SELECT {key}, {columns} FROM {quote_ident(table.legacy)} "
                                f"WHERE {key} IN ({marks})", batch):
            out[str(row[0])] = tuple(row[1:])
    return out


def fetch_current(conn: sqlite3.Connection, table: TableMap, changes: TableChanges) -> None:
    """Fill in each upserted key's current row; a key whose row is gone becomes a delete."""
    found = fetch_by_keys(conn, table, list(changes.upserts))
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
