"""The quarantine table (``truelabel_meta.quarantine``): its records and every statement on it.

A record keeps a source row's table, key, stage, reasons and its original legacy values exactly
as read (text PostgreSQL cannot hold travels base64-encoded), until it is resolved: redriven,
superseded by a later change of the same row, or by a new copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from truelabel_db.schema.lossless import decode_value, encode_row, encode_value

__all__ = ["QuarantineRecord", "decode_value", "encode_row", "encode_value"]

STAGES = ("convert", "load", "duplicate", "orphan", "follow", "verify")


@dataclass
class QuarantineRecord:
    legacy_table: str
    legacy_key: str | None
    stage: str
    reasons: list[dict[str, str]]
    original: dict[str, Any]
    id: int | None = None
    run_id: int | None = None
    resolved_at: Any = None
    resolution: str | None = None
    quarantined_at: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "run_id": self.run_id, "legacy_table": self.legacy_table,
            "legacy_key": self.legacy_key, "stage": self.stage, "reasons": self.reasons,
            "original": self.original, "resolution": self.resolution,
            "quarantined_at": str(self.quarantined_at) if self.quarantined_at else None,
        }


def insert_records(cur: psycopg.Cursor[Any], records: Iterable[QuarantineRecord],
                   run_id: int | None) -> int:
    rows = [(run_id, r.legacy_table, r.legacy_key, r.stage, Jsonb(r.reasons), Jsonb(r.original))
            for r in records]
    if rows:
        cur.executemany(
            "INSERT INTO truelabel_meta.quarantine "
            "(run_id, legacy_table, legacy_key, stage, reasons, original) "
            "VALUES (%s, %s, %s, %s, %s, %s)", rows)
    return len(rows)


def open_counts(conn: psycopg.Connection, run_id: int | None = None) -> dict[str, int]:
    """Open (unresolved) quarantined rows per legacy table, optionally for one copy run."""
    query = sql.SQL(
        "SELECT legacy_table, count(*) FROM truelabel_meta.quarantine "
        "WHERE resolved_at IS NULL {} GROUP BY legacy_table").format(
        sql.SQL("AND run_id = %s") if run_id is not None else sql.SQL(""))
    params = (run_id,) if run_id is not None else ()
    return {t: n for t, n in conn.execute(query, params)}


def list_records(conn: psycopg.Connection, *, table: str | None = None,
                 include_resolved: bool = False, limit: int = 100, after_id: int = 0) -> list[QuarantineRecord]:
    """Records in id order, ``limit`` at a time after ``after_id`` (page on with the last id)."""
    clauses = [sql.SQL("id > %s")]
    params: list[Any] = [after_id]
    if table:
        clauses.append(sql.SQL("legacy_table = %s"))
        params.append(table)
    if not include_resolved:
        clauses.append(sql.SQL("resolved_at IS NULL"))
    query = sql.SQL(
        "SELECT id, run_id, legacy_table, legacy_key, stage, reasons, original, resolved_at, "
        "resolution, quarantined_at FROM truelabel_meta.quarantine WHERE {} ORDER BY id LIMIT %s"
    ).format(sql.SQL(" AND ").join(clauses))
    rows = conn.execute(query, [*params, limit]).fetchall()
    return [QuarantineRecord(legacy_table=r[2], legacy_key=r[3], stage=r[4], reasons=r[5],
                             original=r[6], id=r[0], run_id=r[1], resolved_at=r[7],
                             resolution=r[8], quarantined_at=r[9]) for r in rows]


def fix_value(conn: psycopg.Connection, record_id: int, column: str, value: Any) -> None:
    """Correct one original value of a quarantined row before re-driving it."""
    with conn.transaction():
        row = conn.execute("SELECT original FROM truelabel_meta.quarantine WHERE id = %s "
                           "FOR UPDATE", (record_id,)).fetchone()
        if row is None:
            raise KeyError(record_id)
        original = dict(row[0])
        if column not in original:
            raise KeyError(column)
        original[column] = value
        conn.execute("UPDATE truelabel_meta.quarantine SET original = %s WHERE id = %s",
                     (Jsonb(original), record_id))


def open_keys(conn: psycopg.Connection, legacy_table: str) -> set[str]:
    """The legacy keys of a table's open records: rows accounted for, not missing."""
    return {str(r[0]) for r in conn.execute(
        "SELECT legacy_key FROM truelabel_meta.quarantine WHERE legacy_table = %s AND resolved_at IS NULL",
        (legacy_table,))}


def resolve_keys(cur: psycopg.Cursor[Any], legacy_table: str, keys: Sequence[str], resolution: str) -> int:
    """Close the open records of these rows (say, superseded by a later change of the same row)."""
    if not keys:
        return 0
    cur.execute("UPDATE truelabel_meta.quarantine SET resolved_at = now(), resolution = %s "
                "WHERE legacy_table = %s AND legacy_key = ANY(%s) AND resolved_at IS NULL",
                (resolution, legacy_table, list(keys)))
    return cur.rowcount


def resolve_ids(cur: psycopg.Cursor[Any] | psycopg.Connection, ids: Sequence[int], resolution: str) -> None:
    cur.execute("UPDATE truelabel_meta.quarantine SET resolved_at = now(), resolution = %s "
                "WHERE id = ANY(%s)", (resolution, list(ids)))


def resolve_all(conn: psycopg.Connection, resolution: str) -> None:
    """Close every open record (a new copy starts from an empty target)."""
    conn.execute("UPDATE truelabel_meta.quarantine SET resolved_at = now(), resolution = %s "
                 "WHERE resolved_at IS NULL", (resolution,))


def iter_open(conn: psycopg.Connection, *, table: str | None = None, page: int = 500) -> Iterator[QuarantineRecord]:
    """Every open record, read a page at a time (a quarantine can hold millions)."""
    after = 0
    while records := list_records(conn, table=table, limit=page, after_id=after):
        yield from records
        after = int(records[-1].id or after)
