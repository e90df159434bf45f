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

from truelabel_db.catalog.quarantine import (
    QuarantineRecord,
    decode_value,
    fix_value,
    list_records,
    open_counts,
    resolve_ids,
)
from truelabel_db.rows.load import copy_payload
from truelabel_db.schema.copytext import NULL
from truelabel_db.schema.mapping import BY_LEGACY, TableMap
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
    return fields


def redrive(conn: psycopg.Connection, *, table: str | None = None,
            ids: Sequence[int] = ()) -> RedriveResult:
    """Convert and insert open quarantined rows again; those that still fail stay, with why."""
    result = RedriveResult()
    records = [r for r in list_records(conn, table=table, limit=1_000_000)
               if not ids or r.id in ids]
    for record in records:
        assert record.id is not None
        mapping = BY_LEGACY.get(record.legacy_table)
        if mapping is None:
            result.still_failing[record.id] = "table is not in the mapping"
            continue
        try:
            with conn.transaction():
                line = "\t".join(convert_original(mapping, record.original)) + "\n"
                with conn.cursor() as cur:
                    copy_payload(cur, mapping, line.encode("utf-8"))
                resolve_ids(conn, [record.id], "redriven")
            result.inserted.append(record.id)
        except (Unconvertible, psycopg.Error) as exc:
            reason = exc.reason if isinstance(exc, Unconvertible) else str(exc).splitlines()[0]
            result.still_failing[record.id] = reason
    return result


def dumps(records: Iterable[QuarantineRecord]) -> str:
    return json.dumps([r.to_dict() for r in records], ensure_ascii=False, default=str)
