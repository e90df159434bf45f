"""One canonical form for a row, computed from either side.

A legacy row goes through the mapping's conversion; a PostgreSQL row arrives as Python values.
Both end as the same plain values: timestamps in UTC milliseconds, JSON re-serialised with
sorted keys, UUIDs and addresses as their canonical text, lists as lists. Two rows are equal
exactly when their canonical forms are.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from truelabel_db.legacy.encodings import to_epoch_ms
from truelabel_db.schema.mapping import TableMap
from truelabel_db.schema.transforms import Json, Timestamp, Unconvertible

Canonical = tuple[Any, ...]


def _json(value: Any) -> str:
    parsed = json.loads(value) if isinstance(value, str) else value
    return json.dumps(parsed, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def canonical_value(transform: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(transform, Timestamp) and isinstance(value, datetime):
        return to_epoch_ms(value)
    if isinstance(transform, Json):
        return _json(value)
    if isinstance(value, list):
        return tuple(value)  # hashable, so canonical rows can be set members and hashed
    if isinstance(value, (bool, int)):
        return value
    return str(value)


def canonical_legacy(table: TableMap, raw: tuple[Any, ...]) -> Canonical | None:
    """The canonical form of a legacy row, or None when the copy would quarantine it."""
    out = []
    for col, value in zip(table.columns, raw):
        try:
            out.append(canonical_value(col.transform, col.convert(value).value))
        except Unconvertible:
            return None
    if table.extra:
        out.append(_json(table.extra_transform.convert_values(raw[len(table.columns):]).value))
    return tuple(out)


def canonical_target(table: TableMap, row: tuple[Any, ...]) -> Canonical:
    out = [canonical_value(c.transform, v) for c, v in zip(table.columns, row)]
    if table.extra:
        out.append(_json(row[len(table.columns)] or {}))
    return tuple(out)
