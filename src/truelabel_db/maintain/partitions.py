"""Monthly partitions created ahead and dropped after the retention (plan §6.2, daily 05:00 UTC).

Planned first (a value that ``--dry-run`` prints), then executed. Creation counts ahead from the
later of the clock's month and the newest month that already holds rows, so a clock behind the
data cannot leave tomorrow's rows in the default. A month whose rows already sit in the default
partition is not created (PostgreSQL would refuse: the default holds rows of the new range);
the plan says so, and the partition report counts those rows.

Dropping works from real bounds: a partition goes when its upper bound is at or before
``now - retention``, so no row newer than the retention is ever dropped; the default partition
never goes. It is detached first and dropped after, so the parent's lock is held only for the
detach. ``DETACH ... CONCURRENTLY`` takes no lock that blocks the app, but PostgreSQL forbids it
when the parent has a default partition (ours do): then a plain DETACH runs under the job's
short lock_timeout and gives way to the app, retrying. A concurrent detach that was interrupted
is finished (``FINALIZE``) before anything else.

Where pg_partman manages a parent (it is listed in ``part_config``), this job leaves that parent
alone: one owner per table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db.maintain.runner import RETRY_PAUSES, Limits, giving_way
from truelabel_db.monitor.partitions import (
    DEFAULT_AHEAD_MONTHS,
    DEFAULT_RETENTION_MONTHS,
    Partition,
    add_months,
    month_start,
    partitioned_tables,
    partitions_of,
)
from truelabel_db.postgres import one


@dataclass
class PartitionPlan:
    create: list[tuple[str, datetime]] = field(default_factory=list)
    detach: list[Partition] = field(default_factory=list)
    finalize: list[Partition] = field(default_factory=list)
    blocked: dict[str, str] = field(default_factory=dict)
    left_to_partman: list[str] = field(default_factory=list)
    cutoff: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"create": [f"{parent} {month:%Y-%m}" for parent, month in self.create],
                "detach_and_drop": [p.name for p in self.detach],
                "finalize_detach": [p.name for p in self.finalize],
                "blocked": self.blocked, "left_to_partman": self.left_to_partman,
                "retention_cutoff": self.cutoff.isoformat() if self.cutoff else None}


def plan_partitions(conn: psycopg.Connection, now: datetime, *, ahead: int = DEFAULT_AHEAD_MONTHS,
                    retention: int = DEFAULT_RETENTION_MONTHS, schema: str = "public") -> PartitionPlan:
    """What the job would do at ``now``: nothing is changed."""
    if retention < 1:
        raise ValueError("retention must be at least one month")
    cutoff = add_months(now, -retention)
    plan, managed = PartitionPlan(cutoff=cutoff), partman_parents(conn, schema)
    for parent, key in partitioned_tables(conn, schema):
        if parent in managed:
            plan.left_to_partman.append(parent)
            continue
        parts = partitions_of(conn, parent, schema)
        plan.finalize += [p for p in parts if p.detach_pending]
        ranged = [p for p in parts if not p.is_default and p.lower and p.upper and not p.detach_pending]
        plan.detach += [p for p in ranged if p.upper <= cutoff]  # type: ignore[operator]
        default = next((p for p in parts if p.is_default), None)
        base = max(month_start(now), _newest_filled_month(conn, ranged) or month_start(now))
        for offset in range(0, _months_between(month_start(now), base) + ahead + 1):
            month = add_months(month_start(now), offset)
            if any(p.lower <= month < p.upper for p in ranged):  # type: ignore[operator]
                continue
            rows = _default_rows_in(conn, default, key, month) if default else 0
            if rows:
                plan.blocked[f"{parent} {month:%Y-%m}"] = (
                    f"{rows:,} row(s) of this month sit in the default partition; move them first")
            else:
                plan.create.append((parent, month))
    return plan


def _months_between(first: datetime, second: datetime) -> int:
    return (second.year - first.year) * 12 + second.month - first.month


def _newest_filled_month(conn: psycopg.Connection, ranged: list[Partition]) -> datetime | None:
    """The lower bound of the newest partition holding a row (cheap: one row per partition)."""
    for part in sorted(ranged, key=lambda p: p.lower, reverse=True):  # type: ignore[arg-type, return-value]
        if one(conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(part.qualified)))[0]:
            return month_start(part.lower)  # type: ignore[arg-type]
    return None


def _default_rows_in(conn: psycopg.Connection, default: Partition, key: str, month: datetime) -> int:
    return int(one(conn.execute(sql.SQL(
        "SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} >= %s AND {} < %s LIMIT 1000000) s").format(
        default.qualified, sql.Identifier(key), sql.Identifier(key)),
        (month, add_months(month, 1))))[0])


def partman_parents(conn: psycopg.Connection, schema: str) -> set[str]:
    """Parents registered with pg_partman, if it is installed (its schema varies)."""
    row = conn.execute("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
                       "ON n.oid = e.extnamespace WHERE e.extname = 'pg_partman'").fetchone()
    if row is None:
        return set()
    names = conn.execute(sql.SQL("SELECT parent_table FROM {}").format(
        sql.Identifier(row[0], "part_config"))).fetchall()
    return {name.split(".", 1)[1] for (name,) in names if name.startswith(schema + ".")}


def execute_plan(conn: psycopg.Connection, plan: PartitionPlan, schema: str = "public",
                 pauses: tuple[float, ...] = RETRY_PAUSES) -> dict[str, Any]:
    """Carry out ``plan`` on an autocommit connection, each step giving way to the app."""
    gave_way = 0
    for part in plan.finalize:
        finalize = sql.SQL("ALTER TABLE {} DETACH PARTITION {} FINALIZE").format(
            sql.Identifier(part.schema, part.parent), part.qualified)
        gave_way += giving_way(partial(conn.execute, finalize), pauses=pauses)
        if plan.cutoff and part.upper and part.upper <= plan.cutoff:  # someone else's detach: keep
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(part.qualified))
    for parent, month in plan.create:
        gave_way += giving_way(partial(
            conn.execute, "SELECT truelabel_meta.ensure_month_partitions(%s::regclass, %s, %s)",
            (sql.Identifier(schema, parent).as_string(conn), month, month)), pauses=pauses)
    for part in plan.detach:
        gave_way += giving_way(partial(_detach, conn, part), pauses=pauses)
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(part.qualified))
    return {**plan.to_dict(), "gave_way": gave_way}


def _detach(conn: psycopg.Connection, part: Partition) -> None:
    parent = sql.Identifier(part.schema, part.parent)
    has_default = one(conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = %s::regclass "
        "AND partdefid <> 0)", (parent.as_string(conn),)))[0]
    mode = sql.SQL("" if has_default else "CONCURRENTLY")
    conn.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {} {}").format(parent, part.qualified, mode))


@dataclass
class PartitionMaintenance:
    """The ``partitions`` job: plan at the clock's time, then execute."""

    name: str = "partitions"
    limits: Limits = field(default_factory=lambda: Limits(lock_timeout_ms=1_000,
                                                           statement_timeout_ms=10 * 60_000))
    ahead: int = DEFAULT_AHEAD_MONTHS
    retention: int = DEFAULT_RETENTION_MONTHS
    schema: str = "public"
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))

    def run(self, conn: psycopg.Connection) -> dict[str, Any]:
        plan = plan_partitions(conn, self.clock(), ahead=self.ahead, retention=self.retention,
                               schema=self.schema)
        return execute_plan(conn, plan, self.schema, self.limits.retry_pauses)
