"""Each side's sums of row hashes per key range, computed inside its own engine.

A key range ("bucket") is the first two characters of the row's key: 1/256th of the UUID
space. PostgreSQL sums its rows' hashes per bucket in SQL, each table cut into key ranges run
side by side on several connections. SQLite does the same in SQL for the rows its checks vouch
for; the rows it cannot vouch for (dirt) are converted in Python through the mapping, and those
the mapping refuses, or that an open quarantine record accounts for, are counted as
quarantined instead. The SQLite side runs in a process of its own (:func:`legacy_sides`) while
this one drives PostgreSQL, so both engines work at once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg import sql

from truelabel_db.postgres import connect
from truelabel_db.schema.mapping import BY_LEGACY, TableMap
from truelabel_db.schema.transforms import Unconvertible, Uuid, decode_text
from truelabel_db.sqlite_sql import quote_ident
from truelabel_db.verify.rowtext import (
    BucketSums,
    inet_text,
    jsonb_text,
    pg_bucket,
    pg_row_hash,
    python_row_text,
    sqlite_bucket,
    sqlite_row_text,
    sqlite_vouches,
    text_hash,
)

Buckets = dict[str, tuple[int, int]]  # key range -> (rows, sum of row hashes)
SPLIT_ROWS = 200_000  # a table larger than this is cut into key ranges for PostgreSQL
HIGHEST = "end"


@dataclass
class LegacySide:
    buckets: Buckets = field(default_factory=dict)
    rows: int = 0
    quarantined: int = 0


def _add(buckets: Buckets, bucket: str, rows: int, total: int) -> None:
    n, s = buckets.get(bucket, (0, 0))
    buckets[bucket] = (n + rows, s + total)


# -- SQLite -------------------------------------------------------------------------------
def legacy_sides(source: str, quarantined: dict[str, list[str]]) -> dict[str, LegacySide]:
    """Every named table's legacy side (run in a process of its own: see :mod:`.compare`)."""
    from truelabel_db.legacy.source import connect as sqlite_connect

    conn = sqlite_connect(Path(source))
    try:
        conn.create_function("tl_jsonb", 1, jsonb_text, deterministic=True)
        conn.create_function("tl_hash", 1, text_hash, deterministic=True)
        conn.create_function("tl_inet", 1, inet_text, deterministic=True)
        conn.create_aggregate("tl_buckets", 1, BucketSums)
        conn.execute("BEGIN")  # one read transaction: every table as of one moment
        return {name: legacy_side(conn, BY_LEGACY[name], set(keys)) for name, keys in quarantined.items()}
    finally:
        conn.close()


def legacy_side(conn: sqlite3.Connection, table: TableMap, quarantined_keys: set[str]) -> LegacySide:
    side = LegacySide()
    name, vouch, text = quote_ident(table.legacy), sqlite_vouches(table), sqlite_row_text(table)
    hashed = f"tl_hash(CAST({text} AS BLOB))"
    conn.text_factory = bytes
    (found,) = conn.execute(f"SELECT tl_buckets(CAST({text} AS BLOB)) FROM {name} WHERE {vouch}").fetchone()
    for bucket, (rows, total) in (json.loads(found) if found else {}).items():
        _add(side.buckets, bucket, rows, total)
        side.rows += rows
    _take_out_quarantined(conn, table, side, quarantined_keys, vouch, hashed)
    conn.text_factory = decode_text
    columns = ", ".join(quote_ident(c.legacy) for c in table.columns)
    for raw in conn.execute(f"SELECT {columns} FROM {name} WHERE NOT ({vouch})"):
        side.rows += 1
        _add_converted(table, raw, side, quarantined_keys)
    return side


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


def _take_out_quarantined(conn: sqlite3.Connection, table: TableMap, side: LegacySide, keys: set[str],
                          vouch: str, hashed: str) -> None:
    """Rows an open quarantine record accounts for leave the sums (they are not in PostgreSQL)."""
    key = quote_ident(table.legacy_key)
    listed = sorted(keys)
    for start in range(0, len(listed), 500):
        batch = listed[start:start + 500]
        marks = ", ".join("?" * len(batch))
        for bucket, h in conn.execute(f"SELECT {sqlite_bucket(table)}, {hashed} FROM {quote_ident(table.legacy)} "
                                      f"WHERE {key} IN ({marks}) AND {vouch}", batch):
            _add(side.buckets, _text(bucket), -1, -int(h))
            side.quarantined += 1


def _add_converted(table: TableMap, raw: tuple[Any, ...], side: LegacySide, quarantined_keys: set[str]) -> None:
    index = [c.legacy for c in table.columns].index(table.legacy_key)
    if raw[index] is not None and str(raw[index]) in quarantined_keys:
        side.quarantined += 1
        return
    try:
        values = tuple(c.convert(v).value for c, v in zip(table.columns, raw))
    except Unconvertible:
        side.quarantined += 1
        return
    _add(side.buckets, str(values[index])[:2].lower(), 1, text_hash(python_row_text(table, values)))


# -- PostgreSQL ---------------------------------------------------------------------------
def target_sides(url: str, tables: Iterable[TableMap], jobs: int) -> dict[str, Buckets]:
    """Every table's target buckets, key ranges of the larger tables on ``jobs`` connections."""
    tables = list(tables)
    work = [(t, r) for t in tables for r in _ranges(url, t, jobs)]
    out: dict[str, Buckets] = {t.legacy: {} for t in tables}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for table, buckets in pool.map(lambda job: (job[0], _target_range(url, *job)), work):
            for bucket, (rows, total) in buckets.items():
                _add(out[table.legacy], bucket, rows, total)
    return out


def _ranges(url: str, table: TableMap, jobs: int) -> list[tuple[str, str] | None]:
    """UUID key ranges (by leading hex digits) for a large table, else the whole table."""
    key = table.column_for_target(table.primary_key[0])
    if jobs < 2 or not isinstance(key.transform, Uuid):
        return [None]
    with connect(url, autocommit=True) as conn:
        estimate = float(conn.execute(
            "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0) FROM pg_partition_tree(%s::regclass) p "
            "JOIN pg_class c ON c.oid = p.relid", (table.target,)).fetchone()[0])
    if estimate <= SPLIT_ROWS:
        return [None]
    parts = min(16, max(jobs, -(-int(estimate) // SPLIT_ROWS)))
    lows = [f"{i * 16 // parts:x}0000000-0000-0000-0000-000000000000" for i in range(parts)]
    return [(low, high) for low, high in zip(lows, lows[1:] + [HIGHEST])]


def _target_range(url: str, table: TableMap, key_range: tuple[str, str] | None) -> Buckets:
    key = sql.Identifier(table.primary_key[0])
    where, params = sql.SQL(""), list(key_range or ())
    if key_range is not None and key_range[1] == HIGHEST:
        where, params = sql.SQL("WHERE {} >= %s::uuid").format(key), params[:1]
    elif key_range is not None:
        where = sql.SQL("WHERE {k} >= %s::uuid AND {k} < %s::uuid").format(k=key)
    query = sql.SQL("SELECT {}, count(*), sum({}) FROM {} {} GROUP BY 1").format(
        pg_bucket(table), pg_row_hash(table), sql.Identifier(table.target), where)
    with connect(url, autocommit=True, application_name="truelabel-db verify") as conn:
        return {str(b): (int(n), int(s)) for b, n, s in conn.execute(query, params).fetchall()}
