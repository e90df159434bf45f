"""Composing SQLite statements safely.

psycopg.sql covers PostgreSQL; on the SQLite side identifiers come only from the declared
mapping or from sqlite_master, and are still quoted here, never pasted raw.
"""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """Quote a SQLite identifier, doubling embedded quotes; refuse NUL, which SQLite cannot hold."""
    if "\x00" in name:
        raise ValueError("identifier contains a NUL byte")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a SQLite string literal (only for constants of the mapping, never for row data)."""
    if "\x00" in value:
        raise ValueError("literal contains a NUL byte")
    return "'" + value.replace("'", "''") + "'"
