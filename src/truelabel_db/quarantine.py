"""The quarantine: where a source row goes when it cannot be written, with the reason.

Nothing is ever dropped. A row that cannot be converted, that PostgreSQL refuses, that
duplicates a key or that points to a missing parent is stored here with its table, key,
reasons and the original legacy values, exactly as read (text that PostgreSQL cannot hold
travels base64-encoded). Once the cause is fixed, ``redrive`` converts it again and inserts it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from truelabel_db.rows.load import copy_payload
from truelabel_db.schema.copytext import NULL
from truelabel_db.schema.mapping import BY_LEGACY, TableMap
from truelabel_db.schema.transforms import BadUtf8, Unconvertible

STAGES = ("convert", "load", "duplicate", "orphan", "follow")


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


def encode_value(value: Any) -> Any:
    """A legacy value as JSON that jsonb can hold, losslessly."""
    if isinstance(value, BadUtf8):
        return {"$base64": base64.b64encode(bytes(value)).decode(), "$type": "text"}
    if isinstance(value, bytes):
        return {"$base64": base64.b64encode(value).decode(), "$type": "blob"}
    if isinstance(value, str) and "\x00" in value:
        return {"$base64": base64.b64encode(value.encode("utf-8")).decode(), "$type": "text"}
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return {"$float": repr(value)}
    return value


def decode_value(value: Any) -> Any:
    """The inverse of :func:`encode_value`."""
    if isinstance(value, dict) and "$base64" in value:
        raw = base64.b64decode(value["$base64"])
        if value.get("$type") == "blob":
            return raw
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return BadUtf8(raw)
    if isinstance(value, dict) and "$float" in value:
        return float(value["$float"])
    return value


def encode_row(columns: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    return {c: encode_value(v) for c, v in zip(columns, values)}


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
                 include_resolved: bool = False, limit: int = 100) -> list[QuarantineRecord]:
    clauses = [sql.SQL("TRUE")]
    params: list[Any] = []
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
                conn.execute("UPDATE truelabel_meta.quarantine SET resolved_at = now(), "
                             "resolution = 'redriven' WHERE id = %s", (record.id,))
            result.inserted.append(record.id)
        except (Unconvertible, psycopg.Error) as exc:
            reason = exc.reason if isinstance(exc, Unconvertible) else str(exc).splitlines()[0]
            result.still_failing[record.id] = reason
    return result


def dumps(records: Iterable[QuarantineRecord]) -> str:
    return json.dumps([r.to_dict() for r in records], ensure_ascii=False, default=str)
