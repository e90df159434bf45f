"""Applying changes by key to PostgreSQL: make each named row equal to SQLite's current row.

Upserts go through a staging table: COPY (the same conversion as the initial copy), then one
``INSERT ... ON CONFLICT DO UPDATE`` per table. Partitioned tables delete and re-insert
instead, since a changed timestamp moves a row to another partition. A row that cannot be
converted leaves PostgreSQL and goes to the quarantine, as in the copy. The caller owns the
transaction (and defers the foreign keys to its commit).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db.catalog.quarantine import QuarantineRecord, insert_records, resolve_keys
from truelabel_db.rows.changes import TableChanges
from truelabel_db.rows.convert import convert_rows, legacy_key
from truelabel_db.schema.ddl import idents
from truelabel_db.schema.mapping import TableMap
from truelabel_db.schema.transforms import Unconvertible

SourceHas = Callable[[TableMap, list[str]], set[str]]


def apply_table(cur: psycopg.Cursor[Any], table: TableMap, changes: TableChanges,
                source_has: SourceHas) -> int:
    converted = convert_rows(table, list(changes.upserts.values()))
    good = [r for r in converted.rows if r.line is not None]
    gone = set(changes.deletes) | {str(r.record.legacy_key) for r in converted.rows if r.record}
    keys_gone = target_keys(table, gone)
    key = sql.Identifier(table.primary_key[0])
    # A partitioned table's upserted rows are deleted and re-inserted (_upsert): in the same
    # statement as the deleted ones, since each such DELETE probes every partition.
    stale = keys_gone + (target_keys(table, {str(legacy_key(table, r.raw)) for r in good})
                         if table.partitioned_by else [])
    if stale:
        cur.execute(sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(sql.Identifier(table.target), key),
                    (stale,))
    _resolve_quarantine(cur, table, list(changes.upserts) + list(changes.deletes))
    quarantined: list[QuarantineRecord] = converted.quarantined
    for record in quarantined:
        record.stage = "follow"
    insert_records(cur, quarantined, None)
    if good:
        _stage(cur, table, b"".join(r.line for r in good if r.line))
        _remove_replaced(cur, table, source_has)
        _upsert(cur, table)
    return len(good) + len(keys_gone)


def target_keys(table: TableMap, legacy_keys: set[str]) -> list[Any]:
    """Legacy keys in the target's type; a key that cannot convert was never in PostgreSQL."""
    column = table.column_for_target(table.primary_key[0])
    out = []
    for k in legacy_keys:
        try:
            out.append(column.transform.convert(k).value)
        except Unconvertible:
            continue
    return out


def _resolve_quarantine(cur: psycopg.Cursor[Any], table: TableMap, keys: list[str]) -> None:
    """A quarantined row that changed again is superseded by its newer state."""
    resolve_keys(cur, table.legacy, keys, "superseded by a later change")


def _stage_name(table: TableMap) -> sql.Identifier:
    return sql.Identifier(f"_tl_stage_{table.target}")


def _stage(cur: psycopg.Cursor[Any], table: TableMap, payload: bytes) -> None:
    """The batch's converted rows in a session temp table shaped like the target's columns."""
    stage, columns = _stage_name(table), [c.target for c in table.columns]
    # Emptied by every commit: cheaper than a TRUNCATE per batch, and never left holding rows.
    cur.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS SELECT {} FROM {} "
                        "WITH NO DATA").format(stage, idents(columns), sql.Identifier(table.target)))
    with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(stage, idents(columns))) as copy:
        copy.write(payload)


def _remove_replaced(cur: psycopg.Cursor[Any], table: TableMap, source_has: SourceHas) -> None:
    """Cover ``INSERT OR REPLACE``: SQLite deletes a row clashing on a unique column without
    firing its delete trigger (unless the app set recursive_triggers). Such a row is still in
    PostgreSQL and now clashes with the new one: if SQLite no longer has it, it goes here too.
    """
    key = sql.Identifier(table.primary_key[0])
    for columns in table.unique:
        match = sql.SQL(" AND ").join(sql.SQL("t.{c} = s.{c}").format(c=sql.Identifier(c)) for c in columns)
        clashing = [str(r[0]) for r in cur.execute(sql.SQL(
            "SELECT t.{k} FROM {t} t JOIN {s} s ON {m} AND t.{k} <> s.{k}").format(
            k=key, t=sql.Identifier(table.target), s=_stage_name(table), m=match)).fetchall()]
        vanished = [k for k in clashing if k not in source_has(table, clashing)]
        if vanished:
            cur.execute(sql.SQL("DELETE FROM {} WHERE {} = ANY(%s::uuid[])").format(
                sql.Identifier(table.target), key), (vanished,))


def _upsert(cur: psycopg.Cursor[Any], table: TableMap) -> None:
    stage = _stage_name(table)
    target = sql.Identifier(table.target)
    columns = [c.target for c in table.columns]
    if table.partitioned_by:  # the old rows went with the deleted ones (apply_table)
        cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
            target, idents(columns), idents(columns), stage))
        return
    updates = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
        for c in columns if c not in table.primary_key)
    cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO UPDATE SET {}").format(
        target, idents(columns), idents(columns), stage, idents(table.primary_key), updates))
