"""Index usage: scans per index, unused indexes, and duplicate or redundant ones (plan §6.1).

"Unused" is only as true as the statistics window: counters restart when statistics are reset
(or after a crash or a point-in-time restore), so the report carries their age and never calls
an index unused in a window shorter than ``min_stats_days``. Indexes that back a primary key,
a unique constraint or an exclusion constraint are never proposed for removal, nor are
partition indexes (they are the parent's index, counted per partition), nor invalid ones still
being built.

Duplicates: same table, same key columns and expressions, same operator classes, same predicate.
Redundant: a plain b-tree whose key columns are a leading prefix of another b-tree's on the same
table with the same predicate (the longer one serves its queries).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from truelabel_db.postgres import one

MIN_STATS_DAYS = 7.0


@dataclass
class IndexUsage:
    schema: str
    table: str
    index: str
    scans: int
    size_bytes: int
    unique: bool
    constraint: bool
    partition: bool
    valid: bool


@dataclass
class IndexReport:
    stats_age_days: float | None
    usage: list[IndexUsage] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    duplicates: list[dict[str, str]] = field(default_factory=list)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def stats_age_days(conn: psycopg.Connection) -> float | None:
    """Days the usage counters cover: since the database's stats reset, else the server's start.

    PostgreSQL 15 keeps the counters across clean restarts, so the start time understates the
    window; when no reset was ever recorded that is the safe side to err on.
    """
    value = one(conn.execute(
        "SELECT extract(epoch FROM now() - coalesce(stats_reset, pg_postmaster_start_time())) / 86400 "
        "FROM pg_stat_database WHERE datname = current_database()"))[0]
    return None if value is None else round(float(value), 2)


def index_usage(conn: psycopg.Connection) -> list[IndexUsage]:
    rows = conn.execute(
        "SELECT s.schemaname, s.relname, s.indexrelname, s.idx_scan, pg_relation_size(s.indexrelid), "
        "x.indisunique, EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = s.indexrelid), "
        "c.relispartition, x.indisvalid "
        "FROM pg_stat_user_indexes s JOIN pg_index x ON x.indexrelid = s.indexrelid "
        "JOIN pg_class c ON c.oid = s.indexrelid "
        "ORDER BY s.idx_scan, pg_relation_size(s.indexrelid) DESC").fetchall()
    return [IndexUsage(r[0], r[1], r[2], int(r[3]), int(r[4]), r[5], r[6], r[7], r[8]) for r in rows]


def duplicate_indexes(conn: psycopg.Connection) -> list[dict[str, str]]:
    """Pairs (index, covered_by, why) of exact duplicates and left-prefix redundant b-trees."""
    rows = conn.execute(
        """SELECT n.nspname, t.relname, ci.relname, co.relname,
                  CASE WHEN a.indkey::text = b.indkey::text AND a.indclass::text = b.indclass::text
                       THEN 'duplicate' ELSE 'prefix' END
             FROM pg_index a JOIN pg_index b ON a.indrelid = b.indrelid AND a.indexrelid <> b.indexrelid
             JOIN pg_class ci ON ci.oid = a.indexrelid JOIN pg_class co ON co.oid = b.indexrelid
             JOIN pg_class t ON t.oid = a.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE ci.relam = co.relam AND a.indisvalid AND b.indisvalid
              AND NOT t.relispartition
              AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
              AND coalesce(pg_get_expr(a.indexprs, a.indrelid), '') = coalesce(pg_get_expr(b.indexprs, b.indrelid), '')
              AND coalesce(pg_get_expr(a.indpred, a.indrelid), '') = coalesce(pg_get_expr(b.indpred, b.indrelid), '')
              AND (   (a.indkey::text = b.indkey::text AND a.indclass::text = b.indclass::text
                       AND (b.indisunique OR NOT a.indisunique) AND (a.indisunique = b.indisunique AND a.indexrelid > b.indexrelid
                            OR b.indisunique AND NOT a.indisunique))
                   OR (ci.relam = (SELECT oid FROM pg_am WHERE amname = 'btree') AND NOT a.indisunique
                       AND a.indnkeyatts < b.indnkeyatts
                       AND (b.indkey::int2[])[0:a.indnkeyatts - 1] = (a.indkey::int2[])[0:a.indnkeyatts - 1]
                       AND (b.indclass::oid[])[0:a.indnkeyatts - 1] = (a.indclass::oid[])[0:a.indnkeyatts - 1]))
            ORDER BY 1, 2, 3""").fetchall()
    return [{"schema": r[0], "table": r[1], "index": r[2], "covered_by": r[3], "why": r[4]} for r in rows]


def index_report(conn: psycopg.Connection, *, min_stats_days: float = MIN_STATS_DAYS) -> IndexReport:
    report = IndexReport(stats_age_days(conn), index_usage(conn), duplicates=duplicate_indexes(conn))
    if report.stats_age_days is not None and report.stats_age_days < min_stats_days:
        report.note = (f"usage counters cover only {report.stats_age_days} day(s); no index is "
                       f"called unused under {min_stats_days:g} days")
        return report
    report.unused = [f"{u.schema}.{u.index}" for u in report.usage
                     if u.scans == 0 and u.valid and not (u.unique or u.constraint or u.partition)]
    return report
