"""Applying a batch of the changelog in one PostgreSQL transaction, with the position it reached.

Foreign keys are deferred to the commit, so the order of changes inside a batch does not
matter; the rows themselves are applied by the rows layer (:mod:`truelabel_db.rows.apply`).
"""

from __future__ import annotations

import psycopg

from truelabel_db.catalog import follow_state
from truelabel_db.follow.batch import Batch
from truelabel_db.rows.apply import SourceHas, apply_table
from truelabel_db.schema.mapping import BY_LEGACY


def apply_batch(conn: psycopg.Connection, source_path: str, batch: Batch, source_has: SourceHas) -> int:
    """Apply every change of ``batch`` and move the position to its end; returns rows changed."""
    changed = 0
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL DEFERRED")
        for name, changes in batch.tables.items():
            changed += apply_table(cur, BY_LEGACY[name], changes, source_has)
        follow_state.advance(cur, source_path, batch.last_seq, batch.changes)
    return changed
