"""Reading one batch of the changelog, and the current state of the rows it names.

Both are read in one SQLite read transaction: the rows are at least as new as the batch, and
any later change to them is further down the changelog, so applying "make the target equal
to the current row" in order converges on SQLite's state. Several changes to one row in a
batch collapse into its last one.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from truelabel_db.catalog import changelog
from truelabel_db.errors import SourceError
from truelabel_db.rows.changes import TableChanges
from truelabel_db.rows.read import fetch_current
from truelabel_db.schema.mapping import DECLARED, Mapping


@dataclass
class Batch:
    first_seq: int
    last_seq: int
    changes: int
    oldest_at_ms: int
    tables: dict[str, TableChanges]
    markers: list[str]


class SchemaChanged(SourceError):
    """The legacy schema moved under the triggers: following on could miss columns."""


def read_batch(conn: sqlite3.Connection, after: int, limit: int, mapping: Mapping = DECLARED) -> Batch | None:
    """The next ``limit`` changes after position ``after`` with their rows; None if caught up."""
    conn.execute("BEGIN")
    try:
        check_schema(conn)
        entries = changelog.read_after(conn, after, limit)
        if not entries:
            return None
        last: dict[tuple[str, str], str] = {}
        by_legacy = mapping.by_legacy
        markers = []
        for entry in entries:
            if entry.op == changelog.MARKER:
                markers.append(str(entry.key))
            elif entry.table in by_legacy:
                last[(entry.table, str(entry.key))] = entry.op
        tables: dict[str, TableChanges] = {}
        for (table, key), op in last.items():
            changes = tables.setdefault(table, TableChanges())
            if op == changelog.DELETE:
                changes.deletes.add(key)
            else:
                changes.upserts[key] = ()
        for table, changes in tables.items():
            fetch_current(conn, by_legacy[table], changes)
        return Batch(entries[0].seq, entries[-1].seq, len(entries), min(e.at_ms for e in entries), tables, markers)
    finally:
        conn.execute("COMMIT")


def check_schema(conn: sqlite3.Connection) -> None:
    recorded = changelog.recorded_schema_version(conn)
    now = conn.execute("PRAGMA schema_version").fetchone()[0]
    if recorded is not None and recorded != now:
        raise SchemaChanged(
            f"the legacy schema changed since capture was installed (schema_version {recorded} → {now}); "
            "following on could miss columns: review the change, update the mapping, "
            "re-install capture and copy again")
