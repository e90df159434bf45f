"""One JSON-ready shape for a hot path's answer, whichever database produced it.

Both implementations select the same target columns (the legacy side through the declared
mapping, so a legacy value goes through the copy's own conversion) and hand the values here.
What comes out is plain JSON: timestamps as UTC ISO text with milliseconds, ids and addresses
as text, JSON documents parsed, lists as lists. Equal answers are then equal dicts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any

from truelabel_db.schema.mapping import BY_TARGET, ColumnMap
from truelabel_db.schema.transforms import Json, Unconvertible

Record = dict[str, Any]


def iso_ms(value: datetime) -> str:
    """UTC, millisecond precision: what Prisma stores, so both sides agree to the digit."""
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"


def json_ready(column: ColumnMap | None, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime):
        return iso_ms(value)
    if column is not None and isinstance(column.transform, Json) and isinstance(value, str):
        return json.loads(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (bool, int, float, str, dict)):
        return value
    return str(value)  # UUID, IPv4Address...


@lru_cache(maxsize=256)
def columns(table: str, fields: tuple[str, ...]) -> tuple[ColumnMap, ...]:
    mapped = BY_TARGET[table]
    return tuple(mapped.column_for_target(f) for f in fields)


def legacy_record(table: str, fields: Sequence[str], raw: Sequence[Any]) -> Record:
    """A legacy row through the copy's conversion; a value it would refuse is shown as stored."""
    out: Record = {}
    for col, value in zip(columns(table, tuple(fields)), raw):
        try:
            out[col.target] = json_ready(col, col.convert(value).value)
        except Unconvertible:
            out[col.target] = value if isinstance(value, (int, float, str)) else None
    return out


def target_record(table: str, fields: Sequence[str], row: Sequence[Any]) -> Record:
    return {col.target: json_ready(col, value) for col, value in zip(columns(table, tuple(fields)), row)}


def group_by(records: Iterable[Record], key: str) -> dict[Any, list[Record]]:
    grouped: dict[Any, list[Record]] = {}
    for record in records:
        grouped.setdefault(record[key], []).append(record)
    return grouped
