"""Prometheus metrics through prometheus_client: a registry per exporter, correct types and
escaping, and an exporter that answers "down" instead of failing when its database is gone."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path

import prometheus_client
from prometheus_client.parser import text_string_to_metric_families

from truelabel_db.embedded import free_port
from truelabel_db.follow import metrics as follow_metrics
from truelabel_db.follow.follower import FollowStats
from truelabel_db.monitor import metrics as monitor_metrics
from truelabel_db.monitor.partitions import ParentHealth
from truelabel_db.monitor.snapshot import REPORTS, Snapshot


def _families(text: str) -> dict[str, prometheus_client.Metric]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_two_followers_in_one_process_keep_their_own_figures_and_nothing_is_global() -> None:
    first, second = FollowStats(position=10, changes_applied=7), FollowStats(position=99, lag_ms=1500)
    one, two = follow_metrics.registry(lambda: first), follow_metrics.registry(lambda: second)

    assert one.get_sample_value("truelabel_follow_position") == 10
    assert two.get_sample_value("truelabel_follow_position") == 99
    assert two.get_sample_value("truelabel_follow_lag_seconds") == 1.5
    assert one.get_sample_value("truelabel_follow_changes_applied_total") == 7
    first.position = 11   # read at each scrape, not copied at registration
    assert one.get_sample_value("truelabel_follow_position") == 11
    assert prometheus_client.REGISTRY.get_sample_value("truelabel_follow_position") is None


def test_the_followers_counters_and_gauges_have_their_types() -> None:
    families = _families(follow_metrics.render(FollowStats(retries=2, alerts=1)))
    assert families["truelabel_follow_retries"].type == "counter"
    assert families["truelabel_follow_alerts"].samples[0].name == "truelabel_follow_alerts_total"
    assert families["truelabel_follow_lag_rows"].type == "gauge"
    assert {"truelabel_follow_verifications", "truelabel_follow_rows_resynced",
            "truelabel_follow_trimmed", "truelabel_follow_batches"} <= set(families)


def test_the_follower_exporter_serves_over_http_and_frees_its_port() -> None:
    port = free_port()
    server = follow_metrics.serve(port, lambda: FollowStats(position=5))
    try:
        response = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10)
        body = response.read().decode()
    finally:
        server.close()
    assert response.headers["Content-Type"].startswith("text/plain")
    assert _families(body)["truelabel_follow_position"].samples[0].value == 5
    again = follow_metrics.serve(port, lambda: FollowStats())   # the port was released
    again.close()


def test_label_values_are_escaped() -> None:
    odd = 'events"\\\nx'
    health = ParentHealth(parent=odd, key="at", partitions=1, has_default=True, default_rows=3, months_ahead=2)
    text = monitor_metrics.render(Snapshot(sections={"partitions": [health]}))
    (sample,) = _families(text)["truelabel_partition_default_rows"].samples
    assert sample.labels == {"parent": odd} and sample.value == 3


def test_a_failed_report_is_a_zero_not_a_failed_scrape() -> None:
    text = monitor_metrics.render(Snapshot(errors={"bloat": "statement timeout"}))
    ok = {s.labels["report"]: s.value for s in _families(text)["truelabel_monitor_report_ok"].samples}
    assert ok["bloat"] == 0 and all(ok[name] == 1 for name in REPORTS if name != "bloat")


def test_an_unreachable_database_is_monitor_up_zero_with_the_scrape_answered() -> None:
    dead = f"postgresql://postgres:secret@127.0.0.1:{free_port()}/nowhere"
    port = free_port()
    server = monitor_metrics.serve(port, lambda: monitor_metrics.snapshot_of(dead))
    try:
        response = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30)
        body = response.read().decode()
    finally:
        server.close()
    assert response.status == 200
    assert _families(body)["truelabel_monitor_up"].samples[0].value == 0
    assert "secret" not in body


def test_the_follow_lag_the_monitor_reads_is_in_seconds() -> None:
    from truelabel_db.monitor.migration_lag import FollowerLag

    lag = FollowerLag(source="/srv/app.db", position=1, lag_ms=250, lag_rows=4, rows_per_second=None,
                      seconds_since_apply=1.0)
    families = _families(monitor_metrics.render(Snapshot(sections={"migration-lag": [lag]})))
    assert families["truelabel_migration_lag_seconds"].samples[0].value == 0.25
    assert families["truelabel_migration_lag_rows"].samples[0].labels == {"source": "/srv/app.db"}


def test_each_service_app_keeps_its_own_metrics(empty_legacy: Callable[..., Path]) -> None:
    from fastapi.testclient import TestClient

    from tests.fix_auth import ADMIN, ADMIN_HEADERS
    from truelabel_db.service import ServiceConfig, create_app

    config = ServiceConfig(database=str(empty_legacy()), warm_on_start=False, refresh_interval=0, warm_interval=0,
                           **ADMIN)
    with TestClient(create_app(config), headers=ADMIN_HEADERS) as busy, \
            TestClient(create_app(config), headers=ADMIN_HEADERS) as idle:
        for _ in range(2):
            assert busy.get("/validations/queue?limit=5").status_code == 200
        response = busy.get("/metrics")
        families = _families(response.text)
        quiet = _families(idle.get("/metrics").text)
    assert response.headers["content-type"].startswith("text/plain")
    hits = {s.labels["layer"]: s.value for s in families["truelabel_cache_hits"].samples}
    assert hits["l1"] == 1 and families["truelabel_cache_hits"].type == "counter"
    assert {s.labels["layer"]: s.value for s in quiet["truelabel_cache_hits"].samples}["l1"] == 0
    assert families["truelabel_service_switches"].samples[0].name == "truelabel_service_switches_total"
    assert families["truelabel_service_primary_epoch"].type == "gauge"
