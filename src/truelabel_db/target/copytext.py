"""PostgreSQL COPY text format, produced by Python or by SQLite itself.

Both paths of the copy (rows formatted inside SQLite, rows repaired in Python) must produce the
same bytes for the same value; the two escaping functions here are that single definition.
"""

from __future__ import annotations

NULL = "\\N"

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_escape(text: str) -> str:
    """Escape one field for COPY ... (FORMAT text)."""
    return text.translate(_COPY_ESCAPES)


def sqlite_copy_escape(expr: str) -> str:
    """The SQLite expression that escapes ``expr`` exactly like :func:`copy_escape`."""
    out = f"replace({expr}, '\\', '\\\\')"
    for char, escaped in ((9, "\\t"), (10, "\\n"), (13, "\\r")):
        out = f"replace({out}, char({char}), '{escaped}')"
    return out


def array_literal(items: list[str]) -> str:
    """A PostgreSQL text[] literal, every element quoted so commas and braces are safe."""
    quoted = ('"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"' for s in items)
    return "{" + ",".join(quoted) + "}"
