"""The monitor's figures as Prometheus metrics, collected fresh at every scrape.

Plain text exposition format written by hand, as the follower's exporter does, so no client
library is needed. Each scrape opens one connection, runs every report under a statement
timeout and renders what came back; a report that failed shows as
``truelabel_monitor_report_ok{report=...} 0`` instead of failing the scrape.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from truelabel_db.monitor.snapshot import REPORTS, Snapshot, take_snapshot

Sample = tuple[str, dict[str, str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _line(name: str, labels: dict[str, str], value: float) -> str:
    inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {value}" if inner else f"{name} {value}"


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
    "truelabel_follow_lag_ms": "The migration follower's lag",
    "truelabel_follow_lag_rows": "Changelog rows the migration follower has not applied",
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
            yield "truelabel_follow_lag_ms", {"source": f.source}, float(f.lag_ms)
        if f.lag_rows is not None:
            yield "truelabel_follow_lag_rows", {"source": f.source}, float(f.lag_rows)


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


def render(snapshot: Snapshot) -> str:
    """The exposition text: HELP and TYPE once per metric, then its samples."""
    grouped: dict[str, list[str]] = {}
    for name, labels, value in samples(snapshot):
        grouped.setdefault(name, []).append(_line(name, labels, value))
    lines = []
    for name, rows in grouped.items():
        lines += [f"# HELP {name} {HELP.get(name, name)}", f"# TYPE {name} gauge", *rows]
    return "\n".join(lines) + "\n"


def scrape(url: str) -> str:
    """One scrape: a fresh connection, every report, the text."""
    from truelabel_db.postgres import connect

    with connect(url, autocommit=True, application_name="truelabel-db monitor") as conn:
        return render(take_snapshot(conn))


def serve(port: int, collect: Callable[[], str], host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Serve ``collect()`` on ``http://host:port/metrics`` from a daemon thread."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path != "/metrics":
                self.send_error(404)
                return
            try:
                body, status = collect().encode(), 200
            except Exception as exc:  # the scrape must answer; the error is the answer
                body, status = f"# scrape failed: {exc}\ntruelabel_monitor_up 0\n".encode(), 500
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="monitor-metrics", daemon=True).start()
    return server
