"""Every report at once (``monitor all``, the Prometheus exporter), each one failing on its own.

A report that cannot be produced (a missing privilege, a statement timeout) is recorded as an
error in its section; the others still come back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from truelabel_db.monitor.bloat import bloat_report
from truelabel_db.monitor.cache_hit import cache_hit
from truelabel_db.monitor.indexes import index_report
from truelabel_db.monitor.maintenance import maintenance_health
from truelabel_db.monitor.migration_lag import migration_lag
from truelabel_db.monitor.partitions import partition_health
from truelabel_db.monitor.replication import replication_report
from truelabel_db.monitor.slow_queries import slow_queries

REPORT_TIMEOUT_MS = 30_000

REPORTS: dict[str, Callable[[psycopg.Connection], Any]] = {
    "slow-queries": slow_queries,
    "bloat": bloat_report,
    "indexes": index_report,
    "partitions": partition_health,
    "cache-hit": cache_hit,
    "replication": replication_report,
    "migration-lag": migration_lag,
    "maintenance": maintenance_health,
}


@dataclass
class Snapshot:
    sections: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**{name: to_plain(value) for name, value in self.sections.items()}, "errors": self.errors}


def to_plain(value: Any) -> Any:
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


def take_snapshot(conn: psycopg.Connection, names: list[str] | None = None) -> Snapshot:
    """Run the named reports (all by default) on an autocommit connection."""
    conn.execute("SELECT set_config('statement_timeout', %s, false)", (f"{REPORT_TIMEOUT_MS}ms",))
    snapshot = Snapshot()
    for name in names or list(REPORTS):
        try:
            snapshot.sections[name] = REPORTS[name](conn)
        except psycopg.Error as exc:
            snapshot.errors[name] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return snapshot
