"""VACUUM ANALYZE, table by table, stepping around tables the app holds (plan §6.2, daily 03:00).

One statement per table instead of a database-wide VACUUM: each can give way on its own
(``SKIP_LOCKED`` skips a table whose lock is not free at once rather than queueing behind a
DDL), and the run records which tables were done. Partitioned parents get an explicit
ANALYZE: autovacuum never analyzes them, so the planner's estimates for queries on the parent
go stale unless someone does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db.maintain.runner import Limits


@dataclass
class VacuumAnalyze:
    name: str = "vacuum-analyze"
    limits: Limits = field(default_factory=lambda: Limits(lock_timeout_ms=2_000,
                                                           statement_timeout_ms=60 * 60_000))
    schemas: tuple[str, ...] = ("public",)

    def run(self, conn: psycopg.Connection) -> dict[str, Any]:
        tables = leaf_tables(conn, self.schemas)
        for schema, table, is_partition in tables:
            # a partition is analyzed with its parent below: ANALYZE of a parent recurses
            options = sql.SQL("SKIP_LOCKED" if is_partition else "ANALYZE, SKIP_LOCKED")
            conn.execute(sql.SQL("VACUUM ({}) {}.{}").format(
                options, sql.Identifier(schema), sql.Identifier(table)))
        parents = partitioned_parents(conn, self.schemas)
        for schema, table in parents:
            conn.execute(sql.SQL("ANALYZE (SKIP_LOCKED) {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table)))
        return {"tables_vacuumed": len(tables), "parents_analyzed": len(parents)}


def leaf_tables(conn: psycopg.Connection, schemas: tuple[str, ...]) -> list[tuple[str, str, bool]]:
    """Plain tables, partitions and materialized views (what holds rows), and which are partitions."""
    return [(r[0], r[1], r[2]) for r in conn.execute(
        "SELECT n.nspname, c.relname, c.relispartition FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'm') AND n.nspname = ANY(%s) ORDER BY 1, 2", (list(schemas),))]


def partitioned_parents(conn: psycopg.Connection, schemas: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'p' AND n.nspname = ANY(%s) ORDER BY 1, 2", (list(schemas),))]
