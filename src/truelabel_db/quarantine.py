"""The quarantine as a stage: fixing a quarantined row's values and driving it in again.

Nothing is ever dropped. A row that cannot be converted, that PostgreSQL refuses, that
duplicates a key or that points to a missing parent is kept in the quarantine
(:mod:`truelabel_db.catalog.quarantine`) with its reasons and original values. Once the cause
is fixed, ``redrive`` converts it again and inserts it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db import guard
from truelabel_db.catalog.quarantine import (
    QuarantineRecord,
    decode_value,
    fix_value,
    iter_open,
    list_records,
    open_counts,
    resolve_ids,
)
from truelabel_db.rows.apply import Stage, key_array
from truelabel_db.rows.recorded import recorded_mapping
from truelabel_db.schema.copytext import NULL
from truelabel_db.schema.mapping import TableMap
from truelabel_db.schema.transforms import Unconvertible

__all__ = ["QuarantineRecord", "RedriveResult", "dumps", "fix_value", "list_records", "open_counts", "redrive"]


@dataclass
class RedriveResult:
    inserted: list[int] = field(default_factory=list)
    still_failing: dict[int, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"inserted": self.inserted, "still_failing": self.still_failing}


def convert_original(table: TableMap, original: dict[str, Any]) -> list[str]:
    """COPY text fields for a quarantined row, or Unconvertible naming the first bad column."""
    fields = []
    for col in table.columns:
        try:
            converted = col.convert(decode_value(original.get(col.legacy)))
        except Unconvertible as exc:
            raise Unconvertible(f"{col.legacy}: {exc.reason}") from exc
        fields.append(NULL if converted.value is None else col.transform.copy_text(converted.value))
    if table.extra:
        extra = table.extra_transform
        fields.append(extra.copy_text(extra.convert_values(
            tuple(decode_value(original.get(c)) for c in table.extra)).value))
    return fields


def redrive(conn: psycopg.Connection, *, table: str | None = None,
            ids: Sequence[int] = ()) -> RedriveResult:
    """Apply open quarantined rows again, each in a savepoint; those that still fail stay, with why.

    A row is upserted (its older version may be in PostgreSQL, kept under ``--orphans keep``); a
    held delete is retried. Refused once PostgreSQL is the primary: these are legacy rows, and
    the app's rows there must not be overwritten.
    """
    guard.no_postgres_primary(conn, "quarantine redrive")
    result = RedriveResult()
    mapping = recorded_mapping(conn)
    wanted = set(ids)
    for record in iter_open(conn, table=table):
        assert record.id is not None
        if wanted and record.id not in wanted:
            continue
        target = mapping.by_legacy.get(record.legacy_table)
        if target is None:
            result.still_failing[record.id] = "table is not in the mapping"
            continue
        try:
            with conn.transaction(), conn.cursor() as cur:
                _apply_record(cur, target, record)
                resolve_ids(cur, [record.id], "redriven")
            result.inserted.append(record.id)
        except (Unconvertible, psycopg.Error) as exc:
            reason = exc.reason if isinstance(exc, Unconvertible) else str(exc).splitlines()[0]
            result.still_failing[record.id] = reason
    return result


def _apply_record(cur: psycopg.Cursor[Any], table: TableMap, record: QuarantineRecord) -> None:
    if is_held_delete(record):
        cur.execute(sql.SQL("DELETE FROM {} WHERE {} = ANY({})").format(
            table.ident, sql.Identifier(table.key_column), key_array(table)), ([str(record.legacy_key)],))
        return
    stage = Stage(cur, table)
    stage.reset()
    stage.copy(("\t".join(convert_original(table, record.original)) + "\n").encode("utf-8"))
    stage.upsert()


def is_held_delete(record: QuarantineRecord) -> bool:
    """A delete the follower could not apply (the row stays in PostgreSQL, held, with why)."""
    return not record.original and any(r.get("op") == "delete" for r in record.reasons)


def dumps(records: Iterable[QuarantineRecord]) -> str:
    return json.dumps([r.to_dict() for r in records], ensure_ascii=False, default=str)
