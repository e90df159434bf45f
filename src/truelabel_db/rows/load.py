"""Writing rows into a target table with COPY, the one way every step loads data."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from truelabel_db.schema.ddl import idents
from truelabel_db.schema.mapping import TableMap


def copy_statement(table: TableMap, *, csv: bool = False) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN {}").format(
        table.ident,
        idents(table.target_columns),
        sql.SQL("(FORMAT csv)" if csv else "(FORMAT text)"))


def copy_payload(cur: psycopg.Cursor[Any], table: TableMap, payload: bytes, *,
                 csv: bool = False) -> None:
    """Stream COPY lines (text format by default, each ending in a newline) into ``table``."""
    if not payload:
        return
    with cur.copy(copy_statement(table, csv=csv)) as copy:
        copy.write(payload)
