"""Applying a batch to PostgreSQL in one transaction, together with the position it reached.

Upserts go through a staging table: COPY (the same conversion as the initial copy), then one
``INSERT ... ON CONFLICT DO UPDATE`` per table. Partitioned tables delete and re-insert
instead, since a changed timestamp moves a row to another partition. Foreign keys are
deferred to the commit, so the order of changes inside a batch does not matter. A row that
cannot be converted leaves PostgreSQL and goes to the quarantine, as in the copy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db.copy.convert import convert_rows
from truelabel_db.follow.batch import Batch, TableChanges
from truelabel_db.quarantine import QuarantineRecord, insert_records
from truelabel_db.schema.ddl import idents
from truelabel_db.schema.mapping import BY_LEGACY, TableMap
from truelabel_db.schema.transforms import Unconvertible

SourceHas = Callable[[TableMap, list[str]], set[str]]


def apply_batch(conn: psycopg.Connection, source_path: str, batch: Batch, source_has: SourceHas) -> int:
    """Apply every change of ``batch`` and move the position to its end; returns rows changed."""
    changed = 0
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL DEFERRED")
        for name, changes in batch.tables.items():
            changed += apply_table(cur, BY_LEGACY[name], changes, source_has)
        cur.execute(
            "UPDATE truelabel_meta.follow_state SET position = %s, applied_at = now(), "
            "changes_applied = changes_applied + %s WHERE source_path = %s AND position < %s",
            (batch.last_seq, batch.changes, source_path, batch.last_seq))
        if cur.rowcount != 1:
            raise RuntimeError("the follow position moved under this follower: is another one running?")
    return changed


def apply_table(cur: psycopg.Cursor[Any], table: TableMap, changes: TableChanges,
                source_has: SourceHas) -> int:
    converted = convert_rows(table, list(changes.upserts.values()))
    good = [r for r in converted.rows if r.line is not None]
    gone = set(changes.deletes) | {str(r.record.legacy_key) for r in converted.rows if r.record}
    keys_gone = target_keys(table, gone)
    key = sql.Identifier(table.primary_key[0])
    if keys_gone:
        cur.execute(sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(sql.Identifier(table.target), key),
                    (keys_gone,))
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
    if keys:
        cur.execute("UPDATE truelabel_meta.quarantine SET resolved_at = now(), "
                    "resolution = 'superseded by a later change' WHERE legacy_table = %s "
                    "AND legacy_key = ANY(%s) AND resolved_at IS NULL", (table.legacy, keys))


def _stage_name(table: TableMap) -> sql.Identifier:
    return sql.Identifier(f"_tl_stage_{table.target}")


def _stage(cur: psycopg.Cursor[Any], table: TableMap, payload: bytes) -> None:
    """The batch's converted rows in a session temp table shaped like the target's columns."""
    stage, columns = _stage_name(table), [c.target for c in table.columns]
    cur.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} AS SELECT {} FROM {} WITH NO DATA").format(
        stage, idents(columns), sql.Identifier(table.target)))
    cur.execute(sql.SQL("TRUNCATE {}").format(stage))
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
    if table.partitioned_by:
        cur.execute(sql.SQL("DELETE FROM {t} WHERE {k} IN (SELECT {k} FROM {s})").format(
            t=target, k=sql.Identifier(table.primary_key[0]), s=stage))
        cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
            target, idents(columns), idents(columns), stage))
        return
    updates = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
        for c in columns if c not in table.primary_key)
    cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO UPDATE SET {}").format(
        target, idents(columns), idents(columns), stage, idents(table.primary_key), updates))
