"""Comparing a legacy file and a PostgreSQL database row for row, through the canonical form."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
from psycopg import sql

from truelabel_db.schema.mapping import TABLES
from truelabel_db.schema.transforms import decode_text
from truelabel_db.verify.canonical import canonical_legacy, canonical_target


def differences(legacy: Path, pg: psycopg.Connection) -> dict[str, tuple[int, int]]:
    """Per table, (rows only in SQLite, rows only in PostgreSQL); empty when both are equal.

    Legacy rows the mapping refuses are left out: they are the quarantine's business.
    """
    conn = sqlite3.connect(legacy)
    conn.text_factory = decode_text
    out = {}
    for table in TABLES:
        columns = ", ".join(f'"{c.legacy}"' for c in table.columns)
        left = {canonical_legacy(table, r) for r in conn.execute(f'SELECT {columns} FROM "{table.legacy}"')}
        left.discard(None)
        right = {canonical_target(table, r) for r in pg.execute(sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(sql.Identifier(c.target) for c in table.columns), sql.Identifier(table.target)))}
        if left != right:
            out[table.legacy] = (len(left - right), len(right - left))
    return out
