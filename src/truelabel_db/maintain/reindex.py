"""REINDEX CONCURRENTLY of the busy tables (plan §6.2, weekly, Sunday 04:00), never a plain REINDEX.

A plain REINDEX holds a lock that blocks every write to the table for the whole rebuild; the
concurrent form builds a new index beside the old one and swaps them, taking strong locks only
for moments, each bounded here by ``lock_timeout``. It cannot run inside a transaction block,
so it runs on the job's autocommit connection, one leaf table at a time (partitions one by one).

A concurrent rebuild that fails or gives way leaves an INVALID index named ``<index>_ccnew``
(or ``_ccold`` for the swapped-out one) that costs every write and is never used: such leftovers
are dropped — concurrently — before the run and after any failure. An invalid index that some
backend is still building is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db.maintain.runner import Limits, giving_way

PLAN_TABLES = ("products", "validations", "analytics_events")  # plan §6.2's reindex list
LEFTOVER_PATTERN = r"_cc(new|old)[0-9]*$"


@dataclass
class Reindex:
    name: str = "reindex"
    limits: Limits = field(default_factory=lambda: Limits(lock_timeout_ms=2_000,
                                                           statement_timeout_ms=2 * 60 * 60_000))
    tables: tuple[str, ...] = PLAN_TABLES
    schema: str = "public"

    def run(self, conn: psycopg.Connection) -> dict[str, Any]:
        dropped = drop_invalid_leftovers(conn)
        leaves = [leaf for table in self.tables for leaf in leaf_tables_of(conn, self.schema, table)]
        gave_way = 0
        for schema, leaf in leaves:
            statement = sql.SQL("REINDEX TABLE CONCURRENTLY {}.{}").format(
                sql.Identifier(schema), sql.Identifier(leaf))
            gave_way += giving_way(partial(conn.execute, statement), pauses=self.limits.retry_pauses,
                                   before_retry=lambda: dropped.extend(drop_invalid_leftovers(conn)))
        return {"tables_reindexed": len(leaves), "leftovers_dropped": dropped, "gave_way": gave_way}


def leaf_tables_of(conn: psycopg.Connection, schema: str, table: str) -> list[tuple[str, str]]:
    """The table itself, or for a partitioned table each partition that holds rows."""
    rows = conn.execute(
        "WITH t AS (SELECT to_regclass(%s) AS oid) "
        "SELECT n.nspname, c.relname FROM t, LATERAL (SELECT t.oid UNION "
        "  SELECT relid FROM pg_partition_tree(t.oid)) tree (relid) "
        "JOIN pg_class c ON c.oid = tree.relid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' ORDER BY 1, 2",
        (sql.Identifier(schema, table).as_string(conn),)).fetchall()
    return [(r[0], r[1]) for r in rows]


def invalid_leftovers(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """Invalid indexes left by a failed concurrent rebuild, that nobody is building now."""
    return [(r[0], r[1]) for r in conn.execute(
        "SELECT n.nspname, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE NOT i.indisvalid AND c.relname ~ %s AND n.nspname NOT IN ('pg_catalog', 'pg_toast') "
        "AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p "
        "                WHERE p.index_relid = i.indexrelid OR p.relid = i.indrelid) "
        "ORDER BY 1, 2", (LEFTOVER_PATTERN,))]


def drop_invalid_leftovers(conn: psycopg.Connection) -> list[str]:
    dropped = []
    for schema, index in invalid_leftovers(conn):
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}.{}").format(
            sql.Identifier(schema), sql.Identifier(index)))
        dropped.append(f"{schema}.{index}")
    return dropped
