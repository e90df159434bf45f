"""Verifying only the rows the changelog still lists: the cutover's check of recent changes.

A full verification reads every row on both sides (minutes at millions of rows); at cutover,
with writes paused, only the rows changed since the changelog was last trimmed need a look.
Those that differ are resynced through the follower's apply, then checked again.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db.catalog import changelog
from truelabel_db.catalog.quarantine import open_keys
from truelabel_db.legacy.source import connect as sqlite_connect
from truelabel_db.postgres import connect
from truelabel_db.rows.apply import resync, typed_keys
from truelabel_db.rows.changes import TableChanges
from truelabel_db.rows.legacy import LegacyRows
from truelabel_db.rows.read import fetch_current
from truelabel_db.rows.recorded import recorded_mapping
from truelabel_db.schema.ddl import idents
from truelabel_db.schema.mapping import Mapping, TableMap
from truelabel_db.verify.canonical import canonical_legacy, canonical_target


def changed_keys(conn: sqlite3.Connection, mapping: Mapping, after: int = 0) -> dict[str, set[str]]:
    return {table: keys for table, keys in changelog.keys_after(conn, after).items() if table in mapping.by_legacy}


def _differing(legacy: sqlite3.Connection, pg: psycopg.Connection, table: TableMap, keys: set[str]) -> set[str]:
    changes = TableChanges(upserts={k: () for k in keys})
    fetch_current(legacy, table, changes)
    left = {k: canonical_legacy(table, row) for k, row in changes.upserts.items()}
    index = [c.target for c in table.columns].index(table.primary_key[0])
    query = sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s)").format(
        idents(table.target_columns), table.ident,
        sql.Identifier(table.primary_key[0]))
    right: dict[str, Any] = {}
    for row in pg.execute(query, (sorted(typed_keys(table, keys)),)):  # typed keys: the index is used
        canonical = canonical_target(table, row)
        right[str(canonical[index])] = canonical
    differing = set()
    for key in keys:
        want = left.get(key)
        have = right.get(want[index] if want else key.lower())
        if want is None and key in changes.deletes:
            if have is not None:
                differing.add(key)
        elif want is not None and have != want:
            differing.add(key)
    return differing


def verify_keys(source: Path, target_url: str) -> tuple[int, int]:
    """(rows checked, rows resynced); raises if a resynced row still differs."""
    legacy = sqlite_connect(source)
    checked = resynced = 0
    try:
        with connect(target_url, autocommit=True, migration_writer=True) as pg:
            mapping = recorded_mapping(pg)
            for name, keys in changed_keys(legacy, mapping).items():
                table = mapping.by_legacy[name]
                accounted = {k.lower() for k in open_keys(pg, name)}  # quarantined: not in PostgreSQL on purpose
                keys = {k for k in keys if k.lower() not in accounted}
                checked += len(keys)
                bad = _differing(legacy, pg, table, keys)
                if not bad:
                    continue
                resync(pg, LegacyRows(legacy), table, bad, mapping=mapping, source=source)
                resynced += len(bad)
                still = _differing(legacy, pg, table, bad)
                if still:
                    from truelabel_db.errors import ReconciliationError

                    raise ReconciliationError(f"{name}: {len(still)} row(s) still differ after resync")
    finally:
        legacy.close()
    return checked, resynced
