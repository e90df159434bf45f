"""Legacy values as JSON that ``jsonb`` can hold, losslessly, and back.

SQLite stores what PostgreSQL's JSON cannot: BLOBs, text that is not UTF-8 or holds NUL bytes,
non-finite reals. Those travel tagged and base64-encoded, so a value read from the legacy
file is written back exactly (the quarantine's originals, the columns a drifted file carries).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from truelabel_db.schema.transforms import BadUtf8


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
