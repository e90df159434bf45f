"""Writing rows into a target table with COPY, the one way every step loads data."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from truelabel_db.target.mapping import TableMap


def copy_statement(table: TableMap) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.target),
        sql.SQL(", ").join(sql.Identifier(c.target) for c in table.columns))


def copy_payload(cur: psycopg.Cursor[Any], table: TableMap, *payloads: bytes) -> None:
    """Stream COPY text lines (each ending in a newline) into ``table``, in one COPY."""
    if not any(payloads):
        return
    with cur.copy(copy_statement(table)) as copy:
        for payload in payloads:
            if payload:
                copy.write(payload)
