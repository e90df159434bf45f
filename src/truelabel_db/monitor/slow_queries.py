"""Slow queries from pg_stat_statements (plan §6.1), and what to do when it is not loaded.

The extension's view only works when the library is in ``shared_preload_libraries`` and the
extension is created in the database; when either is missing the report says which and how to
fix it, and is otherwise empty: monitoring must not fail because one source is absent. The
statistics are never reset here (PgHero does; a reset would blind whoever else collects them);
the report carries the reset time and the count of evicted entries so the reader knows the
window the figures cover.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db.postgres import one

DEFAULT_MIN_MEAN_MS = 100.0  # the plan's slow_queries view: mean_exec_time > 100
ENABLE_HINT = ("add pg_stat_statements to shared_preload_libraries (ALTER SYSTEM SET "
               "shared_preload_libraries = 'pg_stat_statements'), restart PostgreSQL, then "
               "CREATE EXTENSION pg_stat_statements in this database")
CREATE_HINT = "CREATE EXTENSION pg_stat_statements in this database (the library is loaded)"


@dataclass
class SlowQuery:
    query: str
    calls: int
    total_ms: float
    mean_ms: float
    max_ms: float
    stddev_ms: float
    rows: int
    hit_ratio: float | None


@dataclass
class SlowQueryReport:
    available: bool
    hint: str | None = None
    stats_reset: str | None = None
    evicted_entries: int | None = None
    queries: list[SlowQuery] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def statements_status(conn: psycopg.Connection) -> str | None:
    """None when pg_stat_statements can be read here; else how to make it readable."""
    loaded = "pg_stat_statements" in one(conn.execute("SHOW shared_preload_libraries"))[0]
    created = one(conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension "
                           "WHERE extname = 'pg_stat_statements')"))[0]
    if not loaded:
        return ENABLE_HINT
    if not created:
        return CREATE_HINT
    return None


def slow_queries(conn: psycopg.Connection, *, min_mean_ms: float = DEFAULT_MIN_MEAN_MS,
                 limit: int = 20) -> SlowQueryReport:
    """This database's statements with a mean time above ``min_mean_ms``, slowest first."""
    hint = statements_status(conn)
    if hint is not None:
        return SlowQueryReport(available=False, hint=hint)
    schema = one(conn.execute("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
                          "ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'"))[0]
    report = SlowQueryReport(available=True)
    info = one(conn.execute(sql.SQL("SELECT stats_reset, dealloc FROM {}").format(
        sql.Identifier(schema, "pg_stat_statements_info"))))
    report.stats_reset, report.evicted_entries = str(info[0]), int(info[1])
    rows = conn.execute(sql.SQL(
        "SELECT query, calls, total_exec_time, mean_exec_time, max_exec_time, stddev_exec_time, rows, "
        "shared_blks_hit::float / nullif(shared_blks_hit + shared_blks_read, 0) FROM {} "
        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND mean_exec_time > %s ORDER BY mean_exec_time DESC LIMIT %s").format(
        sql.Identifier(schema, "pg_stat_statements")), (min_mean_ms, limit)).fetchall()
    report.queries = [SlowQuery(" ".join(r[0].split()), int(r[1]), round(r[2], 2), round(r[3], 2),
                                round(r[4], 2), round(r[5], 2), int(r[6]),
                                None if r[7] is None else round(r[7], 4)) for r in rows]
    return report
