"""Reading one key range of a legacy table, split into what SQLite can format itself and the rest.

For each chunk SQLite evaluates the mapping's clean predicate on every row. Clean rows are
formatted as COPY text by SQLite (in C, with the GIL released) and arrive as one byte string;
only the others come to Python, where they are repaired or quarantined. The predicate is a
CASE, never NULL, so every row lands on exactly one side.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from truelabel_db.sqlite_sql import quote_ident
from truelabel_db.target.copytext import NULL
from truelabel_db.target.mapping import ColumnMap, TableMap
from truelabel_db.target.transforms import decode_text


def _clean_expr(col: ColumnMap) -> str:
    q = quote_ident(col.legacy)
    check = col.transform.sqlite_clean(q)
    if col.not_null:
        return f"({q} IS NOT NULL AND {check})"
    return f"({q} IS NULL OR ({check}))"


def _text_expr(col: ColumnMap) -> str:
    q = quote_ident(col.legacy)
    text = col.transform.sqlite_text(q)
    if col.not_null:
        return str(text)
    return f"CASE WHEN {q} IS NULL THEN '{NULL}' ELSE {text} END"


@dataclass(frozen=True)
class ChunkQueries:
    """The SQLite statements for one table, built once from the mapping."""

    count: str
    clean: str | None
    unclean: str
    every_row: str

    @classmethod
    def for_table(cls, table: TableMap) -> "ChunkQueries":
        name = quote_ident(table.legacy)
        rng = "rowid BETWEEN ? AND ?"
        columns = ", ".join(quote_ident(c.legacy) for c in table.columns)
        count = f"SELECT count(*) FROM {name} WHERE {rng}"
        every_row = f"SELECT {columns} FROM {name} WHERE {rng}"
        if not table.fast_path:
            return cls(count, None, every_row, every_row)
        is_clean = "CASE WHEN " + " AND ".join(_clean_expr(c) for c in table.columns) + " THEN 1 ELSE 0 END"
        line = " || char(9) || ".join(_text_expr(c) for c in table.columns)
        clean = (f"SELECT count(*), group_concat(line, char(10)) FROM "
                 f"(SELECT {line} AS line FROM {name} WHERE {rng} AND ({is_clean}) = 1)")
        unclean = f"SELECT {columns} FROM {name} WHERE {rng} AND ({is_clean}) = 0"
        return cls(count, clean, unclean, every_row)


@dataclass
class ChunkRead:
    total: int
    clean_rows: int
    clean_payload: bytes
    other_rows: list[tuple[Any, ...]]


def read_chunk(conn: sqlite3.Connection, queries: ChunkQueries, low: int, high: int,
               *, everything_in_python: bool = False) -> ChunkRead:
    """Read rowids ``low..high`` in one read transaction so the three queries agree."""
    conn.execute("BEGIN")
    try:
        total = conn.execute(queries.count, (low, high)).fetchone()[0]
        clean_rows, payload = 0, b""
        if queries.clean is not None and not everything_in_python:
            conn.text_factory = bytes
            clean_rows, payload = conn.execute(queries.clean, (low, high)).fetchone()
            payload = (payload + b"\n") if payload else b""
            unclean_sql = queries.unclean
        else:
            unclean_sql = queries.every_row
        conn.text_factory = decode_text
        others = conn.execute(unclean_sql, (low, high)).fetchall()
    finally:
        conn.execute("COMMIT")
    return ChunkRead(total, clean_rows, payload, others)


def table_bounds(conn: sqlite3.Connection, table: TableMap) -> tuple[int, int, int]:
    """Row count and rowid range of a table: what the chunk plan is cut from."""
    row = conn.execute(f"SELECT count(*), coalesce(min(rowid), 0), coalesce(max(rowid), -1) "
                       f"FROM {quote_ident(table.legacy)}").fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def fetch_by_keys(conn: sqlite3.Connection, table: TableMap,
                  keys: list[str]) -> dict[str, tuple[Any, ...]]:
    """Original legacy rows by primary key (for rows quarantined after the load)."""
    if not keys:
        return {}
    conn.text_factory = decode_text
    columns = ", ".join(quote_ident(c.legacy) for c in table.columns)
    key = quote_ident(table.legacy_key)
    out: dict[str, tuple[Any, ...]] = {}
    for start in range(0, len(keys), 500):
        batch = keys[start:start + 500]
        marks = ", ".join("?" * len(batch))
        for row in conn.execute(f"SELECT {key}, {columns} FROM {quote_ident(table.legacy)} "
                                f"WHERE {key} IN ({marks})", batch):
            out[str(row[0])] = tuple(row[1:])
    return out
