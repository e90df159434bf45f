"""Partitions: created ahead of the clock and of the data, dropped after the retention by their
real bounds, the default partition never dropped and its rows reported."""

from __future__ import annotations

from datetime import datetime, timezone

import psycopg
import pytest

from tests.fix_optional import require_extension
from truelabel_db.maintain.partitions import PartitionMaintenance, plan_partitions
from truelabel_db.maintain.runner import run_job
from truelabel_db.monitor.partitions import partition_health

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=timezone.utc)  # retention 6 months → cutoff 2026-05-15


def _partitions(conn: psycopg.Connection, parent: str) -> set[str]:
    return {r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass", (parent,))}


def _exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]


def _scan(conn: psycopg.Connection, at: str) -> None:
    conn.execute("INSERT INTO qr_code_access (qr_code, accessed_at) VALUES ('QR-1', %s)", (at,))


def test_a_partition_past_retention_is_detached_and_dropped_one_inside_it_is_not(
        schema_pg: psycopg.Connection) -> None:
    conn = schema_pg
    conn.execute("SELECT truelabel_meta.ensure_month_partitions('qr_code_access', '2026-02-01', '2026-11-01')")
    # a name that lies about its range: bounds, not names, decide (pg_partman #776)
    conn.execute("CREATE TABLE qr_code_access_2019_01 PARTITION OF qr_code_access "
                 "FOR VALUES FROM ('2025-12-01 00:00+00') TO ('2026-01-01 00:00+00')")
    for at in ("2026-03-10", "2026-05-20", "2026-06-02", "2019-06-01"):  # the last lands in the default
        _scan(conn, at)

    result = run_job(conn, PartitionMaintenance(clock=lambda: NOW))

    assert result.status == "done", result.error
    kept = _partitions(conn, "qr_code_access")
    for gone in ("qr_code_access_2019_01", "qr_code_access_2026_02", "qr_code_access_2026_03",
                 "qr_code_access_2026_04"):
        assert gone not in kept and not _exists(conn, gone), gone
    # May ends after the cutoff (May 15): a row from May 20 is inside the retention and stays
    assert {"qr_code_access_2026_05", "qr_code_access_2026_06", "qr_code_access_default"} <= kept
    assert conn.execute("SELECT count(*) FROM qr_code_access").fetchone()[0] == 3
    assert conn.execute("SELECT count(*) FROM qr_code_access_default").fetchone()[0] == 1


def test_future_partitions_are_created_ahead_of_the_clock_and_of_the_newest_data(
        schema_pg: psycopg.Connection) -> None:
    conn = schema_pg
    conn.execute("SELECT truelabel_meta.ensure_month_partitions('analytics_events', '2027-03-01', '2027-03-01')")
    conn.execute("INSERT INTO analytics_events (event_type, entity_type, entity_id, created_at) "
                 "VALUES ('qr_scan', 'product', gen_random_uuid(), '2027-03-05')")

    run_job(conn, PartitionMaintenance(clock=lambda: NOW, ahead=2))

    months = {name.removeprefix("analytics_events_") for name in _partitions(conn, "analytics_events")}
    # from the clock's month through the newest data's month (March 2027), then two more
    expected = {"2026_11", "2026_12", "2027_01", "2027_02", "2027_03", "2027_04", "2027_05", "default"}
    assert months == expected
    health = {h.parent: h for h in partition_health(conn, NOW, ahead=2)}
    assert health["analytics_events"].missing_months == []
    assert health["analytics_events"].months_ahead == 6


def test_a_month_whose_rows_sit_in_the_default_is_not_created_and_the_reports_say_why(
        schema_pg: psycopg.Connection) -> None:
    conn = schema_pg
    _scan(conn, "2026-12-24")  # no December partition yet: the row goes to the default

    plan = plan_partitions(conn, NOW, ahead=1)
    health = {h.parent: h for h in partition_health(conn, NOW, ahead=1)}

    assert "qr_code_access 2026-12" in plan.blocked
    assert ("qr_code_access", datetime(2026, 12, 1, tzinfo=timezone.utc)) not in plan.create
    assert ("qr_code_access", datetime(2026, 11, 1, tzinfo=timezone.utc)) in plan.create
    assert health["qr_code_access"].default_rows == 1
    assert "2026-12" in health["qr_code_access"].missing_months
    assert any("default" in p for p in health["qr_code_access"].problems)
    assert run_job(conn, PartitionMaintenance(clock=lambda: NOW, ahead=1)).status == "done"
    assert conn.execute("SELECT count(*) FROM qr_code_access_default").fetchone()[0] == 1


def test_the_dry_run_changes_nothing(schema_pg: psycopg.Connection) -> None:
    before = _partitions(schema_pg, "qr_code_access")
    plan = plan_partitions(schema_pg, NOW)
    assert plan.create and _partitions(schema_pg, "qr_code_access") == before


def _events_without_default(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TABLE events (at timestamptz NOT NULL, what text) PARTITION BY RANGE (at)")
    conn.execute("SELECT truelabel_meta.ensure_month_partitions('events', '2026-01-01', '2026-11-01')")
    conn.execute("INSERT INTO events SELECT '2026-01-01'::timestamptz + g * interval '1 day', 'x' "
                 "FROM generate_series(0, 300) g")


def test_without_a_default_partition_old_ones_are_detached_concurrently(schema_pg: psycopg.Connection) -> None:
    _events_without_default(schema_pg)
    result = run_job(schema_pg, PartitionMaintenance(clock=lambda: NOW))
    assert result.status == "done", result.error
    kept = _partitions(schema_pg, "events")
    assert "events_2026_04" not in kept and not _exists(schema_pg, "events_2026_04")
    assert {"events_2026_05", "events_2027_02"} <= kept


def test_an_interrupted_concurrent_detach_is_finished_then_dropped(schema_pg: psycopg.Connection,
                                                                    pg_url: str) -> None:
    _events_without_default(schema_pg)
    with psycopg.connect(pg_url) as reader, psycopg.connect(pg_url, autocommit=True) as admin:
        reader.execute("SELECT count(*) FROM events")  # an open transaction that uses the partitions
        admin.execute("SET statement_timeout = '300ms'")
        with pytest.raises(psycopg.errors.QueryCanceled):
            admin.execute("ALTER TABLE events DETACH PARTITION events_2026_01 CONCURRENTLY")
        reader.rollback()
    pending = {h.parent: h for h in partition_health(schema_pg, NOW)}["events"].detach_pending
    assert pending == ["events_2026_01"]

    plan = plan_partitions(schema_pg, NOW)
    result = run_job(schema_pg, PartitionMaintenance(clock=lambda: NOW))

    assert [p.name for p in plan.finalize] == ["events_2026_01"]
    assert result.status == "done", result.error
    assert not _exists(schema_pg, "events_2026_01") and not _exists(schema_pg, "events_2026_02")


def test_a_table_handed_to_pg_partman_is_left_to_it(schema_pg: psycopg.Connection) -> None:
    conn = schema_pg
    require_extension(conn, "pg_partman", "partman")
    conn.execute("CREATE SCHEMA partman")
    conn.execute("CREATE EXTENSION pg_partman SCHEMA partman")
    conn.execute("CREATE TABLE events (at timestamptz NOT NULL, what text) PARTITION BY RANGE (at)")
    conn.execute("SELECT partman.create_parent('public.events', 'at', 'native', 'monthly', p_premake := 2)")
    before = _partitions(conn, "events")

    plan = plan_partitions(conn, NOW)
    result = run_job(conn, PartitionMaintenance(clock=lambda: NOW))

    assert plan.left_to_partman == ["events"]
    assert not any(parent == "events" for parent, _ in plan.create)
    assert result.status == "done" and _partitions(conn, "events") == before
    assert "qr_code_access_2026_11" in _partitions(conn, "qr_code_access")  # the others are still ours
