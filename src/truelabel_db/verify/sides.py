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

from truelabel_db.postgres import connect, one
from truelabel_db.schema.mapping import TableMap
from truelabel_db.schema.transforms import Unconvertible, Uuid, decode_text
from truelabel_db.sqlite_sql import quote_ident
from truelabel_db.verify.rowtext import (
    BucketSums,
    inet_text,
    jsonb_text,
    pg_bucket,
    pg_row_hash,
    python_row_text,
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


@dataclass
class TargetSide:
    buckets: Buckets = field(default_factory=dict)  # rows an open quarantine record holds left out
    rows: int = 0


def _add(buckets: Buckets, bucket: str, rows: int, total: int) -> None:
    n, s = buckets.get(bucket, (0, 0))
    buckets[bucket] = (n + rows, s + total)


# -- SQLite -------------------------------------------------------------------------------
def legacy_sides(source: str, tables: list[TableMap], quarantined: dict[str, list[str]]) -> dict[str, LegacySide]:
    """These tables' legacy sides (run in a process of its own: see :mod:`.compare`)."""
    from truelabel_db.legacy.source import connect as sqlite_connect

    conn = sqlite_connect(Path(source))
    try:
        conn.create_function("tl_jsonb", 1, jsonb_text, deterministic=True)
        conn.create_function("tl_inet", 1, inet_text, deterministic=True)
        # typeshed says an aggregate finalizes to a number; SQLite takes any value (ours: JSON text)
        conn.create_aggregate("tl_buckets", 1, BucketSums)  # type: ignore[arg-type]
        conn.execute("BEGIN")  # one read transaction: these tables as of one moment
        return {t.legacy: legacy_side(conn, t, set(quarantined.get(t.legacy, ()))) for t in tables}
    finally:
        conn.close()


def legacy_side(conn: sqlite3.Connection, table: TableMap, quarantined_keys: set[str]) -> LegacySide:
    side = LegacySide()
    name, vouch, text = quote_ident(table.legacy), sqlite_vouches(table), sqlite_row_text(table)
    conn.text_factory = bytes
    (found,) = conn.execute(f"SELECT tl_buckets(CAST({text} AS BLOB)) FROM {name} WHERE {vouch}").fetchone()
    for bucket, (rows, total) in (json.loads(found) if found else {}).items():
        _add(side.buckets, bucket, rows, total)
        side.rows += rows
    held = {k.lower() for k in quarantined_keys}
    _take_out_quarantined(conn, table, side, held, vouch, text)
    conn.text_factory = decode_text
    for raw in conn.execute(f"SELECT {table.legacy_select()} FROM {name} WHERE NOT ({vouch})"):
        side.rows += 1
        _add_converted(table, raw, side, held)
    return side


def _take_out_quarantined(conn: sqlite3.Connection, table: TableMap, side: LegacySide, held: set[str],
                          vouch: str, text: str) -> None:
    """Rows an open quarantine record accounts for leave the sums: they are not in PostgreSQL,
    or are held there with the record saying why. Keys compare in lower case."""
    if not held:
        return
    key = quote_ident(table.legacy_key)
    for (body,) in conn.execute(
            f"SELECT CAST({text} AS BLOB) FROM {quote_ident(table.legacy)} "
            f"WHERE lower({key}) IN (SELECT value FROM json_each(?)) AND {vouch}", (json.dumps(sorted(held)),)):
        _add(side.buckets, body[:2].decode("utf-8", "replace"), -1, -text_hash(body))
        side.quarantined += 1


def _add_converted(table: TableMap, raw: tuple[Any, ...], side: LegacySide, held: set[str]) -> None:
    index = table.legacy_columns.index(table.legacy_key)
    if raw[index] is not None and str(raw[index]).lower() in held:
        side.quarantined += 1
        return
    try:
        values = tuple(c.convert(v).value for c, v in zip(table.columns, raw))
        extra = table.extra_transform.convert_values(raw[len(table.columns):]).value if table.extra else None
    except Unconvertible:
        side.quarantined += 1
        return
    key_index = [c.legacy for c in table.columns].index(table.legacy_key)
    _add(side.buckets, str(values[key_index])[:2].lower(), 1, text_hash(python_row_text(table, values, extra)))


# -- PostgreSQL ---------------------------------------------------------------------------
def target_sides(url: str, tables: Iterable[TableMap], jobs: int,
                 quarantined: dict[str, list[str]]) -> dict[str, TargetSide]:
    """Every table's target side, key ranges of the larger tables on ``jobs`` connections."""
    tables = list(tables)
    work = [(t, r) for t in tables for r in _ranges(url, t, jobs)]
    out = {t.legacy: TargetSide() for t in tables}

    def run(job: tuple[TableMap, tuple[str, str] | None]) -> tuple[TableMap, TargetSide]:
        table, key_range = job
        held = sorted({k.lower() for k in quarantined.get(table.legacy, ())})
        return table, _target_range(url, table, key_range, held)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for table, part in pool.map(run, work):
            side = out[table.legacy]
            side.rows += part.rows
            for bucket, (rows, total) in part.buckets.items():
                _add(side.buckets, bucket, rows, total)
    return out


def _ranges(url: str, table: TableMap, jobs: int) -> list[tuple[str, str] | None]:
    """UUID key ranges (by leading hex digits) for a large table, else the whole table."""
    key = table.column_for_target(table.primary_key[0])
    if jobs < 2 or not isinstance(key.transform, Uuid):
        return [None]
    with connect(url, autocommit=True) as conn:
        estimate = float(one(conn.execute(
            "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0) FROM pg_partition_tree(%s::regclass) p "
            "JOIN pg_class c ON c.oid = p.relid", (table.qualified,)))[0])
    if estimate <= SPLIT_ROWS:
        return [None]
    parts = min(16, max(jobs, -(-int(estimate) // SPLIT_ROWS)))
    lows = [f"{i * 16 // parts:x}0000000-0000-0000-0000-000000000000" for i in range(parts)]
    return [(low, high) for low, high in zip(lows, lows[1:] + [HIGHEST])]


def _target_range(url: str, table: TableMap, key_range: tuple[str, str] | None, held: list[str]) -> TargetSide:
    key = sql.Identifier(table.primary_key[0])
    where: sql.Composable = sql.SQL("")
    params = list(key_range or ())
    if key_range is not None and key_range[1] == HIGHEST:
        where, params = sql.SQL("WHERE {} >= %s::uuid").format(key), params[:1]
    elif key_range is not None:
        where = sql.SQL("WHERE {k} >= %s::uuid AND {k} < %s::uuid").format(k=key)
    counted = sql.SQL("NOT ({}::text = ANY(%s::text[]))").format(key)
    query = sql.SQL("SELECT {b}, count(*), count(*) FILTER (WHERE {c}), coalesce(sum({h}) FILTER (WHERE {c}), 0) "
                    "FROM {t} {w} GROUP BY 1").format(
        b=pg_bucket(table), c=counted, h=pg_row_hash(table), t=table.ident, w=where)
    side = TargetSide()
    with connect(url, autocommit=True, application_name="truelabel-db verify") as conn:
        for bucket, rows, kept, total in conn.execute(query, [held, held] + params).fetchall():
            side.rows += int(rows)
            _add(side.buckets, str(bucket), int(kept), int(total))
    return side
