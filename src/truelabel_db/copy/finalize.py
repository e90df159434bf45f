"""Post-data: keys, foreign keys, indexes and the dashboard view, built after the load.

Keys and foreign keys are added directly; only when PostgreSQL refuses one (a duplicate key,
an orphan reference) are the offending rows found with a set-based query, moved to the
quarantine with their original legacy values, and the constraint added again. A clean copy
pays nothing for the checks. A table's keys and indexes are built as soon as its last chunk
is loaded, by whichever worker is free; foreign keys and the view come when all are in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db.catalog import cache_changes, schema_versions
from truelabel_db.catalog.quarantine import insert_records
from truelabel_db.legacy.source import reading
from truelabel_db.postgres import one
from truelabel_db.rows.convert import quarantine_record
from truelabel_db.rows.read import fetch_by_keys
from truelabel_db.schema.ddl import (
    SchemaFile,
    foreign_key_constraint,
    idents,
    key_constraint,
    schema_files,
)
from truelabel_db.schema.mapping import ForeignKeyMap, Mapping, TableMap

Reporter = Callable[[str], None]
OFFENDERS_BATCH = 5_000  # rows moved to the quarantine per statement


def drop_post_data(conn: psycopg.Connection, mapping: Mapping) -> None:
    """Remove keys, foreign keys, indexes, the view and the cache's change triggers so that an
    empty schema loads fast (and the load announces nothing: the cache is empty anyway)."""
    cache_changes.remove_triggers(conn)
    tables = [t.ident.as_string(None) for t in mapping.tables]
    with conn.transaction():
        conn.execute("DROP MATERIALIZED VIEW IF EXISTS brand_dashboard_stats")
        for kind in ("f", "u", "p"):
            rows = conn.execute(
                "SELECT n.nspname, c.relname, k.conname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE k.contype = %s AND k.conrelid = ANY(%s::regclass[]) AND k.conparentid = 0",
                (kind, tables)).fetchall()
            for schema, table, name in rows:
                conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
                    sql.Identifier(schema, table), sql.Identifier(name)))
        rows = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.indrelid = ANY(%s::regclass[]) "
            "AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)",
            (tables,)).fetchall()
        for schema, index in rows:
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(schema, index)))


@dataclass(frozen=True)
class IndexPlan:
    """The post-data index statements, grouped by the table they are on."""

    by_table: dict[str, list[str]]
    files: list[SchemaFile]
    skipped: list[str]

    @classmethod
    def for_server(cls, extensions: set[str]) -> "IndexPlan":
        files = [f for f in schema_files("post") if "MATERIALIZED VIEW" not in f.text]
        runnable = [f for f in files if all(e in extensions for e in f.requires)]
        by_table: dict[str, list[str]] = {}
        for statement in (s for f in runnable for s in f.statements()):
            match = _INDEX_TABLE.search(statement)
            if match is None:
                raise ValueError(f"post-data statement names no table: {statement[:60]}")
            by_table.setdefault(match.group(1), []).append(statement)
        return cls(by_table, runnable, [f.version for f in files if f not in runnable])


_INDEX_TABLE = re.compile(r"\bON\s+([a-z_][a-z0-9_]*)", re.IGNORECASE)


def add_keys(conn: psycopg.Connection, snapshot: Path, run_id: int, table: TableMap) -> int:
    """A loaded table's primary and unique keys, duplicates quarantined first; returns how many."""
    return sum(_add_key(conn, snapshot, run_id, table, columns)
               for columns in (table.primary_key, *table.unique))


def build_index(conn: psycopg.Connection, statement: str) -> None:
    conn.execute("SET maintenance_work_mem = '256MB'")
    conn.execute(statement.encode())


# The columns whose statistics a query plans with: the hot paths' filters, joins, sort keys
# and groupings (``hotpaths/postgres_paths.py``) and the dashboard view's. ANALYZE reads only
# these: on the partitioned tables a full ANALYZE samples every column of every monthly
# partition (about 40 % of the copy's server time at scale 5); a table no query plans on is
# not analyzed by the copy at all (autovacuum analyzes it once it has changed enough).
STATISTICS_USED: dict[str, tuple[str, ...]] = {
    "users": ("id", "role"),                     # brands, the view's WHERE role, owners by id
    "products": ("id", "user_id", "qr_code", "created_at", "status", "name", "search_vector"),
    "validations": ("product_id",),              # the product list's relations, the view
    "qr_code_access": ("qr_code", "accessed_at"),  # scan analytics, popular products, the view
    "validation_queue": ("status", "priority", "created_at", "product_id"),  # the queue
}


def analyze(conn: psycopg.Connection, table: TableMap) -> None:
    """Statistics for the columns queries plan with (none for a table no hot path reads)."""
    columns = STATISTICS_USED.get(table.target)
    if columns:
        conn.execute(sql.SQL("ANALYZE {} ({})").format(table.ident, idents(columns)))


def _add_key(conn: psycopg.Connection, snapshot: Path, run_id: int,
             table: TableMap, columns: Sequence[str]) -> int:
    _, statement = key_constraint(table, columns)
    dupes = sql.SQL(
        "DELETE FROM {t} WHERE (tableoid, ctid) IN (SELECT tableoid, ctid FROM "
        "(SELECT tableoid, ctid, row_number() OVER (PARTITION BY {cols} ORDER BY ctid) AS rn "
        "FROM {t}) s WHERE rn > 1 LIMIT {n}) RETURNING {all}").format(
        t=table.ident, cols=idents(columns), n=sql.Literal(OFFENDERS_BATCH),
        all=idents(table.target_columns))
    return _add_constraint_or_quarantine(conn, statement, psycopg.errors.UniqueViolation,
                                         _Offenders(snapshot, run_id, table, dupes, "duplicate",
                                                    f"duplicate {', '.join(columns)}"))


def add_foreign_keys(conn: psycopg.Connection, snapshot: Path, run_id: int,
                     orphan_policy: str, report: Reporter, mapping: Mapping) -> dict[str, int]:
    """Foreign keys, parents first. Orphans are quarantined (cascading to their children), or
    kept under a NOT VALID constraint when the policy says so."""
    moved: dict[str, int] = {}
    for table in mapping.tables:
        for fk in table.foreign_keys:
            moved[table.legacy] = moved.get(table.legacy, 0) + _add_fk(
                conn, snapshot, run_id, table, fk, orphan_policy)
    report(f"foreign keys added ({sum(moved.values())} orphan rows "
           f"{'kept' if orphan_policy == 'keep' else 'quarantined'})")
    return moved


def _add_fk(conn: psycopg.Connection, snapshot: Path, run_id: int,
            table: TableMap, fk: ForeignKeyMap, orphan_policy: str) -> int:
    orphans = sql.SQL("{t}.{c} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {p} WHERE {p}.{pc} = {t}.{c})").format(
        t=table.ident, c=sql.Identifier(fk.column),
        p=sql.Identifier(table.target_schema, fk.parent), pc=sql.Identifier(fk.parent_column))
    _, statement = foreign_key_constraint(table, fk, "quarantine")
    if orphan_policy == "keep":
        kept = int(one(conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
            table.ident, orphans)))[0])
        if kept and table.partitioned_by:
            # PostgreSQL cannot put a NOT VALID foreign key on a partitioned table: keeping
            # the orphans means leaving this one foreign key out, which the summary says.
            return kept
        if kept:
            statement = foreign_key_constraint(table, fk, "keep")[1]
        conn.execute(statement)
        return kept
    delete = sql.SQL("DELETE FROM {t} WHERE (tableoid, ctid) IN (SELECT tableoid, ctid FROM {t} WHERE {w} "
                     "LIMIT {n}) RETURNING {all}").format(
        t=table.ident, w=orphans, n=sql.Literal(OFFENDERS_BATCH), all=idents(table.target_columns))
    return _add_constraint_or_quarantine(conn, statement, psycopg.errors.ForeignKeyViolation,
                                         _Offenders(snapshot, run_id, table, delete, "orphan",
                                                    f"{fk.column} has no row in {fk.parent}"))


@dataclass(frozen=True)
class _Offenders:
    """The rows that keep a constraint from being added, and how to quarantine them."""

    snapshot: Path
    run_id: int
    table: TableMap
    delete: sql.Composed  # DELETE ... RETURNING every mapped column, at most OFFENDERS_BATCH rows a time
    stage: str
    reason: str


def _add_constraint_or_quarantine(conn: psycopg.Connection, statement: sql.Composed,
                                  refusal: type[psycopg.Error], offenders: _Offenders) -> int:
    """Add the constraint; only if PostgreSQL refuses, move the offenders out and add it again.

    Returns how many rows were quarantined (none on a clean copy, which pays for no check).
    """
    try:
        conn.execute(statement)
        return 0
    except refusal:
        pass
    with conn.transaction():
        moved = _quarantine_deleted(conn, offenders)
        conn.execute(statement)
    return moved


def _quarantine_deleted(conn: psycopg.Connection, offenders: _Offenders) -> int:
    """Run the DELETE ... RETURNING a batch at a time (memory stays bounded however many rows
    offend) and quarantine its rows with their original legacy values."""
    moved = 0
    while True:
        rows = conn.execute(offenders.delete).fetchall()
        moved += _quarantine_rows(conn, offenders, rows)
        if len(rows) < OFFENDERS_BATCH:
            return moved


def _quarantine_rows(conn: psycopg.Connection, offenders: _Offenders, rows: list[tuple[Any, ...]]) -> int:
    table, snapshot, reason = offenders.table, offenders.snapshot, offenders.reason
    key_index = [c.target for c in table.columns].index(table.primary_key[0])
    keys = [str(r[key_index]) for r in rows]
    with reading(snapshot) as legacy:
        originals = fetch_by_keys(legacy, table, keys)
    records = []
    for key, row in zip(keys, rows):
        raw = originals.get(key)
        reasons = [{"column": "*", "reason": reason}]
        if raw is None:  # the legacy key differs in form (case, braces): rebuild it
            raw = tuple(None if v is None else c.transform.to_legacy(v)
                        for c, v in zip(table.columns, row))
            reasons.append({"column": "*", "reason": "original rebuilt from the loaded row"})
        records.append(quarantine_record(table, raw, offenders.stage, reasons))
    with conn.cursor() as cur:
        insert_records(cur, records, offenders.run_id)
    return len(records)


def build_dashboard(conn: psycopg.Connection, report: Reporter) -> None:
    view = next(f for f in schema_files("post") if "MATERIALIZED VIEW" in f.text)
    for statement in view.statements():
        conn.execute(statement.encode())
    conn.execute("SELECT refresh_dashboard_stats()")
    record_versions(conn, [view])
    report("brand_dashboard_stats built")


def record_versions(conn: psycopg.Connection, files: list[SchemaFile]) -> None:
    for f in files:
        schema_versions.record_applied(conn, f.version, f.checksum)


def target_counts(conn: psycopg.Connection, mapping: Mapping) -> dict[str, int]:
    """Rows now in each target table, keyed by legacy name: the truth the summary reports."""
    return {t.legacy: int(one(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
        t.ident)))[0]) for t in mapping.tables}


def attach_cache_events(conn: psycopg.Connection, report: Reporter) -> dict[str, list[str]]:
    """The cache's change triggers, once the rows are in: from now on every writer announces."""
    tables = cache_changes.install_triggers(conn)
    report(f"cache change triggers on {', '.join(tables)}")
    return {"tables": tables}
