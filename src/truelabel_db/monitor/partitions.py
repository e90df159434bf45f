"""Partition health from the catalog's real bounds, never from partition names.

pg_partman once dropped in-window data by trusting names (#776); here every bound comes from
``pg_get_expr(relpartbound)``. For each time-partitioned table the report says how many months
ahead are already covered, which months in the window have no partition (their rows land in the
default), how many rows sit in the default partition (they block creating the matching child),
and which partitions hold only data older than the retention and are due to go.
"""

from __future__ import annotations

from calendar import monthrange
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db.postgres import one

DEFAULT_AHEAD_MONTHS = 3
DEFAULT_RETENTION_MONTHS = 6  # plan §6.2
DEFAULT_ROW_CAP = 1_000_000  # counting rows in the default stops here


@dataclass(frozen=True)
class Partition:
    schema: str
    name: str
    parent: str
    lower: datetime | None
    upper: datetime | None
    is_default: bool
    detach_pending: bool

    @property
    def qualified(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


@dataclass
class ParentHealth:
    parent: str
    key: str
    partitions: int
    has_default: bool
    default_rows: int
    months_ahead: int
    missing_months: list[str] = field(default_factory=list)
    past_retention: list[str] = field(default_factory=list)
    detach_pending: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(timezone.utc)
    return datetime(moment.year, moment.month, 1, tzinfo=timezone.utc)


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months later (earlier if negative), the day clamped to the month's last."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, monthrange(year, month)[1]))


def partitioned_tables(conn: psycopg.Connection, schema: str = "public") -> list[tuple[str, str]]:
    """(parent, partition key column) of each range-partitioned table with one key column."""
    return [(r[0], r[1]) for r in conn.execute(
        "SELECT c.relname, a.attname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.partattrs[0] "
        "WHERE n.nspname = %s AND p.partstrat = 'r' AND p.partnatts = 1 ORDER BY 1", (schema,))]


def partitions_of(conn: psycopg.Connection, parent: str, schema: str = "public") -> list[Partition]:
    """Every partition of ``parent`` with its bounds read from the catalog (UTC)."""
    rows = conn.execute(
        r"""SELECT cn.nspname, c.relname, bound = 'DEFAULT',
                   (regexp_match(bound, $re$FROM \('([^']+)'\)$re$))[1],
                   (regexp_match(bound, $re$TO \('([^']+)'\)$re$))[1], i.inhdetachpending
              FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
              JOIN pg_namespace cn ON cn.oid = c.relnamespace,
                   LATERAL pg_get_expr(c.relpartbound, c.oid) AS bound
             WHERE i.inhparent = to_regclass(%s) ORDER BY 4 NULLS FIRST""",
        (sql.Identifier(schema, parent).as_string(conn),)).fetchall()
    return [Partition(r[0], r[1], parent, _instant(conn, r[3]), _instant(conn, r[4]), r[2], r[5])
            for r in rows]


def _instant(conn: psycopg.Connection, literal: str | None) -> datetime | None:
    if literal is None:
        return None
    value: datetime = one(conn.execute("SELECT %s::timestamptz", (literal,)))[0]
    return value.astimezone(timezone.utc)


def default_rows(conn: psycopg.Connection, part: Partition, cap: int = DEFAULT_ROW_CAP) -> int:
    """Rows in a (default) partition, counted up to ``cap`` so that a huge one stays cheap."""
    return int(one(conn.execute(sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} LIMIT {}) s").format(
        part.qualified, sql.Literal(cap))))[0])


def parent_health(conn: psycopg.Connection, parent: str, key: str, now: datetime, *,
                  ahead: int = DEFAULT_AHEAD_MONTHS, retention: int = DEFAULT_RETENTION_MONTHS,
                  schema: str = "public") -> ParentHealth:
    parts = partitions_of(conn, parent, schema)
    default = next((p for p in parts if p.is_default), None)
    ranged = [p for p in parts if not p.is_default and p.lower and p.upper]
    this_month = month_start(now)
    cutoff = add_months(now, -retention)
    health = ParentHealth(parent, key, len(parts), default is not None,
                          default_rows(conn, default) if default else 0,
                          months_ahead=_months_ahead(ranged, this_month))
    for offset in range(0, ahead + 1):  # past months without a partition are no problem
        month = add_months(this_month, offset)
        if not any(p.lower <= month < p.upper for p in ranged):  # type: ignore[operator]
            health.missing_months.append(month.strftime("%Y-%m"))
    health.past_retention = [p.name for p in ranged if p.upper <= cutoff]  # type: ignore[operator]
    health.detach_pending = [p.name for p in parts if p.detach_pending]
    _judge(health, ahead)
    return health


def _months_ahead(ranged: list[Partition], this_month: datetime) -> int:
    """Whole months after the current one covered without a gap."""
    covered, month = 0, add_months(this_month, 1)
    while any(p.lower <= month < p.upper for p in ranged):  # type: ignore[operator]
        covered, month = covered + 1, add_months(month, 1)
    return covered


def _judge(health: ParentHealth, ahead: int) -> None:
    if health.missing_months:
        health.problems.append(f"no partition for {', '.join(health.missing_months)} "
                               f"(want this month and {ahead} ahead)")
    if health.default_rows:
        health.problems.append(f"{health.default_rows:,} row(s) in the default partition")
    if health.past_retention:
        health.problems.append(f"{len(health.past_retention)} partition(s) past retention")
    if health.detach_pending:
        health.problems.append("a detach was interrupted: " + ", ".join(health.detach_pending))


def partition_health(conn: psycopg.Connection, now: datetime | None = None, *,
                     ahead: int = DEFAULT_AHEAD_MONTHS, retention: int = DEFAULT_RETENTION_MONTHS,
                     schema: str = "public") -> list[ParentHealth]:
    """Health of every time-partitioned table in ``schema``."""
    moment = now or datetime.now(timezone.utc)
    return [parent_health(conn, parent, key, moment, ahead=ahead, retention=retention, schema=schema)
            for parent, key in partitioned_tables(conn, schema)]
