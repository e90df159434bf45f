"""The monitor's figures as Prometheus metrics, collected fresh at every scrape.

A prometheus_client collector: each scrape opens one connection, runs every report under a
statement timeout and turns what came back into gauges. A report that failed shows as
``truelabel_monitor_report_ok{report=...} 0`` instead of failing the scrape; a database that
cannot be reached shows as ``truelabel_monitor_up 0`` (the exporter itself answered, so
Prometheus can tell a dead database from a dead exporter). Each exporter has a registry of its
own (see :mod:`truelabel_db.exporter`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from truelabel_db.errors import TrueLabelError
from truelabel_db.exporter import MetricsServer, serve_registry
from truelabel_db.monitor.snapshot import REPORTS, Snapshot, take_snapshot

Sample = tuple[str, dict[str, str], float]
log = logging.getLogger(__name__)

HELP = {
    "truelabel_monitor_up": "1 when the database answered this scrape",
    "truelabel_monitor_report_ok": "1 when the report could be produced at this scrape",
    "truelabel_slow_queries": "Statements whose mean time is above the threshold (100 ms)",
    "truelabel_pg_stat_statements_available": "1 when pg_stat_statements is loaded and created",
    "truelabel_bloat_bytes": "Estimated bloat of a table or b-tree index (1 MB and above)",
    "truelabel_bloat_ratio": "Estimated bloat as a share of the relation's size",
    "truelabel_index_scans": "Index scans since the statistics were reset",
    "truelabel_unused_indexes": "Indexes without a scan in the statistics window",
    "truelabel_duplicate_indexes": "Indexes duplicating or prefixed by another index",
    "truelabel_partition_months_ahead": "Future months covered by partitions",
    "truelabel_partition_default_rows": "Rows in the default partition",
    "truelabel_partitions_past_retention": "Partitions holding only data older than the retention",
    "truelabel_cache_hit_ratio": "Share of block reads served from shared buffers",
    "truelabel_replicas_connected": "Standbys streaming from this primary",
    "truelabel_replica_lag_bytes": "WAL bytes a standby has not replayed",
    "truelabel_replica_replay_lag_seconds": "A standby's replay lag as the primary sees it",
    "truelabel_replica_own_lag_seconds": "How stale reads on this replica may be",
    "truelabel_maintenance_seconds_since_success": "Seconds since the job last finished successfully",
    "truelabel_maintenance_failures_last_day": "Failed runs of the job in the last 24 hours",
    "truelabel_migration_lag_seconds": "The migration follower's lag, as it last recorded it",
    "truelabel_migration_lag_rows": "Changelog rows the migration follower had not applied when it last recorded",
}


def samples(snapshot: Snapshot) -> Iterable[Sample]:
    s = snapshot.sections
    yield "truelabel_monitor_up", {}, 1.0
    for name in REPORTS:
        yield "truelabel_monitor_report_ok", {"report": name}, 0.0 if name in snapshot.errors else 1.0
    yield from _statements(s.get("slow-queries"))
    for b in s.get("bloat") or []:
        labels = {"kind": b.kind, "schema": b.schema, "table": b.table, "index": b.index or "", "method": b.method}
        yield "truelabel_bloat_bytes", labels, float(b.bloat_bytes)
        yield "truelabel_bloat_ratio", labels, round(b.bloat_pct / 100, 4)
    yield from _indexes(s.get("indexes"))
    for p in s.get("partitions") or []:
        yield "truelabel_partition_months_ahead", {"parent": p.parent}, float(p.months_ahead)
        yield "truelabel_partition_default_rows", {"parent": p.parent}, float(p.default_rows)
        yield "truelabel_partitions_past_retention", {"parent": p.parent}, float(len(p.past_retention))
    cache = s.get("cache-hit")
    if cache is not None:
        for scope in ("database", "table", "index"):
            value = getattr(cache, f"{scope}_ratio")
            if value is not None:
                yield "truelabel_cache_hit_ratio", {"scope": scope}, value
    yield from _replication(s.get("replication"))
    for j in s.get("maintenance") or []:
        if j.seconds_since_success is not None:
            yield "truelabel_maintenance_seconds_since_success", {"job": j.job}, j.seconds_since_success
        yield "truelabel_maintenance_failures_last_day", {"job": j.job}, float(j.failures_last_day)
    for f in s.get("migration-lag") or []:
        if f.lag_ms is not None:
            yield "truelabel_migration_lag_seconds", {"source": f.source}, f.lag_ms / 1000
        if f.lag_rows is not None:
            yield "truelabel_migration_lag_rows", {"source": f.source}, float(f.lag_rows)


def _statements(report: Any) -> Iterable[Sample]:
    if report is None:
        return
    yield "truelabel_pg_stat_statements_available", {}, 1.0 if report.available else 0.0
    if report.available:
        yield "truelabel_slow_queries", {}, float(len(report.queries))


def _indexes(report: Any) -> Iterable[Sample]:
    if report is None:
        return
    for u in report.usage:
        yield "truelabel_index_scans", {"schema": u.schema, "table": u.table, "index": u.index}, float(u.scans)
    yield "truelabel_unused_indexes", {}, float(len(report.unused))
    yield "truelabel_duplicate_indexes", {}, float(len(report.duplicates))


def _replication(report: Any) -> Iterable[Sample]:
    if report is None:
        return
    if report.role == "replica":
        if report.own_lag_seconds is not None:
            yield "truelabel_replica_own_lag_seconds", {}, report.own_lag_seconds
        return
    yield "truelabel_replicas_connected", {}, float(len(report.replicas))
    for r in report.replicas:
        if r.lag_bytes is not None:
            yield "truelabel_replica_lag_bytes", {"replica": r.name}, float(r.lag_bytes)
        if r.replay_lag_seconds is not None:
            yield "truelabel_replica_replay_lag_seconds", {"replica": r.name}, r.replay_lag_seconds


def families(snapshot: Snapshot) -> Iterator[Metric]:
    """One gauge family per metric name, holding its samples in the order they came."""
    grouped: dict[str, tuple[GaugeMetricFamily, list[str]]] = {}
    for name, labels, value in samples(snapshot):
        if name not in grouped:
            keys = list(labels)
            grouped[name] = (GaugeMetricFamily(name, HELP.get(name, name), labels=keys), keys)
        family, keys = grouped[name]
        family.add_metric([str(labels[key]) for key in keys], value)
    yield from (family for family, _ in grouped.values())


class MonitorCollector(Collector):
    """Every report, from a snapshot taken at each scrape by ``take``."""

    def __init__(self, take: Callable[[], Snapshot]) -> None:
        self._take = take

    def collect(self) -> Iterator[Metric]:
        try:
            snapshot = self._take()
        except TrueLabelError as exc:   # unreachable or refused: the answer is "down", not an error page
            log.warning("scrape failed: %s", exc)
            yield GaugeMetricFamily("truelabel_monitor_up", HELP["truelabel_monitor_up"], value=0.0)
            return
        yield from families(snapshot)


def snapshot_of(url: str) -> Snapshot:
    """Every report of the database ``url``, on a connection of its own."""
    from truelabel_db.postgres import connect

    with connect(url, autocommit=True, application_name="truelabel-db monitor") as conn:
        return take_snapshot(conn)


def registry(take: Callable[[], Snapshot]) -> CollectorRegistry:
    """A registry of its own holding the monitor's collector."""
    own = CollectorRegistry(auto_describe=False)
    own.register(MonitorCollector(take))
    return own


def render(snapshot: Snapshot) -> str:
    """The exposition text of one snapshot."""
    return generate_latest(registry(lambda: snapshot)).decode()


def scrape(url: str) -> str:
    """One scrape of ``url``, as text: what the endpoint would answer now."""
    return generate_latest(registry(lambda: snapshot_of(url))).decode()


def serve(port: int, take: Callable[[], Snapshot], host: str = "127.0.0.1") -> MetricsServer:
    """Serve the metrics of the snapshots ``take`` returns on ``http://host:port/metrics``."""
    return serve_registry(registry(take), port, host)
