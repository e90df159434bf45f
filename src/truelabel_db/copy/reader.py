"""Reading one key range of a legacy table: what SQLite can format itself, and the rest.

For each chunk SQLite evaluates the mapping's checks on every row and formats the rows that
pass as CSV for COPY, in C, in a single scan whose result arrives as one byte string; only the
rows that fail a check, or that the copy has found PostgreSQL would refuse (``excluded``), come
to Python, where they are repaired or quarantined. The check is a CASE, never NULL, so every
row lands on exactly one side, and the count proves it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from truelabel_db.schema.mapping import ColumnMap, TableMap
from truelabel_db.schema.transforms import decode_text
from truelabel_db.sqlite_sql import quote_ident


def check_expr(col: ColumnMap) -> str | None:
    q = "NULL" if col.absent else quote_ident(col.legacy)
    check = col.transform.sqlite_check(q, False)
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

    Each takes ``:low`` and ``:high`` (the rowid range) and ``:excluded``, a JSON array of
    rowids sent to Python whatever SQLite's checks say: rows whose value PostgreSQL would
    refuse, found by the copy after a refusal (see :mod:`.worker`).
    """

    fast: str | None
    unclean: str
    every_row: str
    formatted_rowids: str | None  # the rowids of the fast query's records, in payload order

    @classmethod
    def for_table(cls, table: TableMap) -> "ChunkQueries":
        name = quote_ident(table.legacy)
        rng = "rowid BETWEEN :low AND :high"
        columns = table.legacy_select()
        every_row = f"SELECT {columns} FROM {name} WHERE {rng}"
        if not table.fast_path:
            return cls(None, every_row, every_row, None)
        checks = [c for c in (check_expr(col) for col in table.columns) if c]
        excluded = "rowid IN (SELECT value FROM json_each(:excluded))"
        ok = f"(CASE WHEN {excluded} THEN 0 WHEN {' AND '.join(checks) or '1'} THEN 1 ELSE 0 END)"
        line = " || ',' || ".join(_csv_expr(c) for c in table.columns)
        fast = (f"SELECT count(*), sum({ok}), group_concat(CASE WHEN {ok} = 1 THEN {line} END, "
                f"char(10)) FROM {name} WHERE {rng}")
        return cls(fast, f"{every_row} AND {ok} = 0", every_row, f"SELECT rowid FROM {name} WHERE {rng} AND {ok} = 1")


@dataclass
class ChunkRead:
    total: int
    clean_rows: int
    csv_payload: bytes
    other_rows: list[tuple[Any, ...]]


def read_chunk(conn: sqlite3.Connection, queries: ChunkQueries, low: int, high: int,
               *, excluded: Iterable[int] = (), everything_in_python: bool = False) -> ChunkRead:
    """Read rowids ``low..high`` inside one read transaction, so both queries see one state."""
    params = {"low": low, "high": high, "excluded": json.dumps(sorted(excluded))}
    conn.execute("BEGIN")
    try:
        if queries.fast is None or everything_in_python:
            conn.text_factory = decode_text
            rows = conn.execute(queries.every_row, params).fetchall()
            return ChunkRead(len(rows), 0, b"", rows)
        conn.text_factory = bytes
        total, clean, payload = conn.execute(queries.fast, params).fetchone()
        clean = int(clean or 0)
        others: list[tuple[Any, ...]] = []
        if clean < total:
            conn.text_factory = decode_text
            others = conn.execute(queries.unclean, params).fetchall()
        return ChunkRead(int(total), clean, (payload + b"\n") if payload else b"", others)
    finally:
        conn.execute("COMMIT")


def formatted_rowid(conn: sqlite3.Connection, queries: ChunkQueries, low: int, high: int,
                    excluded: Iterable[int], record: int) -> int | None:
    """The rowid of the fast path's ``record``-th record (1-based), as PostgreSQL numbers them."""
    if queries.formatted_rowids is None:
        return None
    params = {"low": low, "high": high, "excluded": json.dumps(sorted(excluded))}
    row = conn.execute(f"{queries.formatted_rowids} LIMIT 1 OFFSET :skip", {**params, "skip": record - 1}).fetchone()
    return None if row is None else int(row[0])


def column_values(conn: sqlite3.Connection, table: TableMap, column: ColumnMap, low: int,
                  high: int) -> list[tuple[int, Any]]:
    """(rowid, value) of one column over a rowid range, decoded for Python's checks."""
    conn.text_factory = decode_text
    value = "NULL" if column.absent else quote_ident(column.legacy)
    return conn.execute(f"SELECT rowid, {value} FROM {quote_ident(table.legacy)} "
                        "WHERE rowid BETWEEN ? AND ?", (low, high)).fetchall()


def table_bounds(conn: sqlite3.Connection, table: TableMap) -> tuple[int, int, int]:
    """Row count and rowid range of a table: what the chunk plan is cut from."""
    row = conn.execute(f"SELECT count(*), coalesce(min(rowid), 0), coalesce(max(rowid), -1) "
                       f"FROM {quote_ident(table.legacy)}").fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def rows_with_nul(conn: sqlite3.Connection, table: TableMap, low: int, high: int) -> set[int]:
    """Rowids in the range with a NUL byte in any column (PostgreSQL's text cannot hold one)."""
    present = [c.legacy for c in table.columns if not c.absent] + list(table.extra)
    found = " OR ".join(f"instr(CAST({quote_ident(c)} AS BLOB), x'00') > 0" for c in present)
    return {int(r[0]) for r in conn.execute(f"SELECT rowid FROM {quote_ident(table.legacy)} "
                                            f"WHERE rowid BETWEEN ? AND ? AND ({found})", (low, high))}
