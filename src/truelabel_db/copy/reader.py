"""Reading one key range of a legacy table: what SQLite can format itself, and the rest.

For each chunk SQLite evaluates the mapping's checks on every row and formats the rows that
pass as CSV for COPY, in C, in a single scan whose result arrives as one byte string; only the
rows that fail a check come to Python, where they are repaired or quarantined. The check is a
CASE, never NULL, so every row lands on exactly one side, and the count proves it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from truelabel_db.schema.mapping import ColumnMap, TableMap
from truelabel_db.schema.transforms import decode_text
from truelabel_db.sqlite_sql import quote_ident


def _check_expr(col: ColumnMap, strict: bool) -> str | None:
    q = "NULL" if col.absent else quote_ident(col.legacy)
    check = col.transform.sqlite_check(q, strict)
    if col.not_null:
        return f"{q} IS NOT NULL" + (f" AND {check}" if check else "")
    return f"({q} IS NULL OR ({check}))" if check else None


def _csv_expr(col: ColumnMap) -> str:
    q = "NULL" if col.absent else quote_ident(col.legacy)
    field = str(col.transform.sqlite_csv(q))
    return field if col.not_null else f"CASE WHEN {q} IS NULL THEN '' ELSE {field} END"


@dataclass(frozen=True)
class ChunkQueries:
    """The SQLite statements for one table, built once from the mapping.

    ``strict`` queries add the shape checks that catch what PostgreSQL would refuse; the
    copy uses them for a table once PostgreSQL has refused one of its chunks.
    """

    fast: str | None
    unclean: str
    every_row: str

    @classmethod
    def for_table(cls, table: TableMap, strict: bool = False) -> "ChunkQueries":
        name = quote_ident(table.legacy)
        rng = "rowid BETWEEN ? AND ?"
        columns = table.legacy_select()
        every_row = f"SELECT {columns} FROM {name} WHERE {rng}"
        if not table.fast_path:
            return cls(None, every_row, every_row)
        checks = [c for c in (_check_expr(col, strict) for col in table.columns) if c]
        ok = f"(CASE WHEN {' AND '.join(checks)} THEN 1 ELSE 0 END)" if checks else "1"
        line = " || ',' || ".join(_csv_expr(c) for c in table.columns)
        # Strict queries also list the rowids of the formatted rows, in payload order, so that
        # a record PostgreSQL refuses can be traced back to its row.
        rowids = f"group_concat(CASE WHEN {ok} = 1 THEN rowid END)" if strict else "NULL"
        fast = (f"SELECT count(*), sum({ok}), group_concat(CASE WHEN {ok} = 1 THEN {line} END, "
                f"char(10)), {rowids} FROM {name} WHERE {rng}")
        return cls(fast, f"{every_row} AND {ok} = 0", every_row)


@dataclass
class ChunkRead:
    total: int
    clean_rows: int
    csv_payload: bytes
    other_rows: list[tuple[Any, ...]]
    csv_rowids: list[int] | None = None


def read_chunk(conn: sqlite3.Connection, queries: ChunkQueries, low: int, high: int,
               *, everything_in_python: bool = False) -> ChunkRead:
    """Read rowids ``low..high`` inside one read transaction, so both queries see one state."""
    conn.execute("BEGIN")
    try:
        if queries.fast is None or everything_in_python:
            conn.text_factory = decode_text
            rows = conn.execute(queries.every_row, (low, high)).fetchall()
            return ChunkRead(len(rows), 0, b"", rows)
        conn.text_factory = bytes
        total, clean, payload, rowids = conn.execute(queries.fast, (low, high)).fetchone()
        clean = int(clean or 0)
        others: list[tuple[Any, ...]] = []
        if clean < total:
            conn.text_factory = decode_text
            others = conn.execute(queries.unclean, (low, high)).fetchall()
        ids = [int(r) for r in rowids.split(b",")] if rowids else ([] if rowids is not None else None)
        return ChunkRead(int(total), clean, (payload + b"\n") if payload else b"", others, ids)
    finally:
        conn.execute("COMMIT")


def table_bounds(conn: sqlite3.Connection, table: TableMap) -> tuple[int, int, int]:
    """Row count and rowid range of a table: what the chunk plan is cut from."""
    row = conn.execute(f"SELECT count(*), coalesce(min(rowid), 0), coalesce(max(rowid), -1) "
                       f"FROM {quote_ident(table.legacy)}").fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def fetch_by_rowids(conn: sqlite3.Connection, table: TableMap,
                    rowids: list[int]) -> list[tuple[Any, ...]]:
    """Rows by rowid, decoded for the slow path."""
    conn.text_factory = decode_text
    columns = table.legacy_select()
    marks = ", ".join("?" * len(rowids))
    return conn.execute(f"SELECT {columns} FROM {quote_ident(table.legacy)} WHERE rowid IN ({marks})",
                        rowids).fetchall()
