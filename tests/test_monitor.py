"""The monitor's reports on real databases, their JSON and tables, and the Prometheus endpoint."""

from __future__ import annotations

import json
import urllib.request

import psycopg
from psycopg.conninfo import make_conninfo

from tests.fix_cli import run_cli
from truelabel_db.embedded import EmbeddedCluster, free_port
from truelabel_db.maintain import refresh_dashboard
from truelabel_db.monitor.indexes import index_report
from truelabel_db.monitor.metrics import serve, snapshot_of
from truelabel_db.monitor.migration_lag import migration_lag
from truelabel_db.monitor.slow_queries import slow_queries


def test_without_pg_stat_statements_the_report_says_how_to_enable_it_and_exits_0(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        loaded = "pg_stat_statements" in conn.execute("SHOW shared_preload_libraries").fetchone()[0]
        report = slow_queries(conn)
    assert not loaded, "this test needs a server without pg_stat_statements loaded"
    assert not report.available and "shared_preload_libraries" in (report.hint or "")

    result = run_cli("monitor", "slow-queries", "--target", pg_url)
    assert result.code == 0, result.stderr
    assert "shared_preload_libraries" in result.stderr


def test_slow_queries_are_read_from_pg_stat_statements_when_it_is_loaded(preload_cluster: EmbeddedCluster) -> None:
    url = preload_cluster.create_database("slowq")
    with psycopg.connect(url, autocommit=True) as conn:
        assert "CREATE EXTENSION" in (slow_queries(conn).hint or "")
        conn.execute("CREATE EXTENSION pg_stat_statements")
        for _ in range(2):
            conn.execute("SELECT pg_sleep(0.15)")
        conn.execute("SELECT 1")
        report = slow_queries(conn, min_mean_ms=100)
    assert report.available and report.stats_reset
    queries = [q.query for q in report.queries]
    assert any("pg_sleep" in q for q in queries)
    assert not any(q.strip() == "SELECT $1" for q in queries)
    sleep = next(q for q in report.queries if "pg_sleep" in q.query)
    assert sleep.calls == 2 and sleep.mean_ms >= 100


def test_index_report_finds_unused_duplicate_and_redundant_indexes(pg: psycopg.Connection) -> None:
    pg.execute("CREATE TABLE t (id bigint PRIMARY KEY, a integer, b integer)")
    pg.execute("CREATE INDEX t_a ON t (a)")
    pg.execute("CREATE INDEX t_a_again ON t (a)")
    pg.execute("CREATE INDEX t_a_b ON t (a, b)")
    pg.execute("CREATE INDEX t_b_partial ON t (b) WHERE b > 0")

    young = index_report(pg)
    report = index_report(pg, min_stats_days=0)

    assert young.unused == [] and young.note  # a fresh statistics window proves nothing
    pairs = {(d["index"], d["covered_by"], d["why"]) for d in report.duplicates}
    assert ("t_a_again", "t_a", "duplicate") in pairs
    assert ("t_a", "t_a_b", "prefix") in pairs and ("t_a_again", "t_a_b", "prefix") in pairs
    assert not any(d["index"] in ("t_a_b", "t_b_partial", "t_pkey") for d in report.duplicates)
    assert "public.t_pkey" not in report.unused and "public.t_a_b" in report.unused


def test_migration_lag_reads_what_the_follower_recorded(schema_pg: psycopg.Connection) -> None:
    assert migration_lag(schema_pg) == []
    schema_pg.execute("INSERT INTO truelabel_meta.follow_state (source_path, position, lag_rows, lag_ms) "
                      "VALUES ('/srv/app.db', 42, 7, 350)")
    (lag,) = migration_lag(schema_pg)
    assert (lag.source, lag.position, lag.lag_rows, lag.lag_ms) == ("/srv/app.db", 42, 7, 350)


def test_the_metrics_endpoint_serves_every_report(schema_pg: psycopg.Connection, pg_url: str) -> None:
    schema_pg.execute("INSERT INTO qr_code_access (qr_code, accessed_at) VALUES ('QR', '2001-01-01')")
    refresh_dashboard(schema_pg)
    port = free_port()
    server = serve(port, lambda: snapshot_of(pg_url))
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
    finally:
        server.close()
    assert "truelabel_monitor_up 1" in body
    assert 'truelabel_partition_default_rows{parent="qr_code_access"} 1.0' in body
    assert 'truelabel_monitor_report_ok{report="bloat"} 1.0' in body
    assert "truelabel_pg_stat_statements_available 0.0" in body
    assert "truelabel_replicas_connected 0.0" in body
    assert "# TYPE truelabel_cache_hit_ratio gauge" in body
    assert 'truelabel_maintenance_failures_last_day{job="refresh-views"} 0.0' in body
    assert 'truelabel_maintenance_seconds_since_success{job="refresh-views"}' in body


def test_monitor_all_as_json(schema_pg: psycopg.Connection, pg_url: str) -> None:
    result = run_cli("monitor", "all", "--json", "--target", pg_url)
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) >= {"slow-queries", "bloat", "indexes", "partitions", "cache-hit",
                             "replication", "migration-lag", "maintenance", "errors"}
    assert document["errors"] == {}
    assert {p["parent"] for p in document["partitions"]} == {"qr_code_access", "analytics_events"}


def test_bad_input_is_one_line_and_a_non_zero_exit(pg_url: str) -> None:
    dead = make_conninfo(pg_url, port=str(free_port()))
    for args, code in ((("monitor", "bloat", "--target", dead), 4),
                       (("maintain", "run", "partitions", "--retention", "0", "--target", pg_url), 2),  # usage
                       (("maintain", "run", "defrag", "--target", pg_url), 6),
                       (("maintain", "run", "vacuum-analyze", "--dry-run", "--target", pg_url), 6)):
        result = run_cli(*args)
        assert result.code == code, (args, result.stderr)
        assert "Traceback" not in result.stderr and result.stderr.strip().startswith("error:")


def test_monitor_serve_answers_scrapes_until_terminated(schema_pg: psycopg.Connection, pg_url: str) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "TRUELABEL_TARGET_URL"}
    proc = subprocess.Popen([sys.executable, "-m", "truelabel_db", "monitor", "serve", "--port", str(port),
                             "--target", pg_url], stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline, body = time.monotonic() + 60, ""
        while not body:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the exporter did not come up"
                time.sleep(0.2)
        assert "truelabel_monitor_up 1" in body
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0
