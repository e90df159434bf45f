"""PostgreSQL COPY text format, as the slow path writes it.

(The fast path has SQLite write CSV instead, where one replace() escapes a field; see
:mod:`truelabel_db.schema.transforms`.)
"""

from __future__ import annotations

NULL = "\\N"

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_escape(text: str) -> str:
    """Escape one field for COPY ... (FORMAT text)."""
    return text.translate(_COPY_ESCAPES)


def array_literal(items: list[str]) -> str:
    """A PostgreSQL text[] literal, every element quoted so commas and braces are safe."""
    quoted = ('"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"' for s in items)
    return "{" + ",".join(quoted) + "}"
