"""Maintenance jobs: one run at a time, giving way to the app's locks, recorded, and REINDEX
CONCURRENTLY losing no concurrent write and cleaning up after a failed rebuild."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from psycopg import sql

from truelabel_db.maintain import refresh_dashboard, run_job
from truelabel_db.maintain.refresh import RefreshViews
from truelabel_db.maintain.reindex import Reindex
from truelabel_db.maintain.runner import (
    LOCK_CLASS,
    Limits,
    MaintenanceError,
    recent_runs,
)
from truelabel_db.maintain.vacuum import VacuumAnalyze

FAST = Limits(lock_timeout_ms=100, statement_timeout_ms=60_000, retry_pauses=(0.05,))


def _hold_job(conn: psycopg.Connection, job: str) -> None:
    conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, job))


def _wait_until(predicate, seconds: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def test_a_second_run_of_a_job_skips_while_the_first_holds_it(schema_pg: psycopg.Connection,
                                                               pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as other:
        _hold_job(other, "refresh-views")
        holder = other.info.backend_pid

        result = refresh_dashboard(schema_pg)

        assert result.status == "skipped"
        assert result.detail["holder_pid"] == holder
        runs = recent_runs(schema_pg, job="refresh-views")
        assert [r["status"] for r in runs] == ["skipped"]
    # the holder is gone (its server process ends after the client closed): the next run does the work
    _wait_until(lambda: not schema_pg.execute("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = %s)",
                                              (holder,)).fetchone()[0])
    assert refresh_dashboard(schema_pg).status == "done"


def test_with_wait_a_second_run_waits_for_the_first_then_runs(schema_pg: psycopg.Connection,
                                                              pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as other:
        _hold_job(other, "refresh-views")
        results = []
        waiter = threading.Thread(target=lambda: results.append(refresh_dashboard(schema_pg, wait=True)))
        waiter.start()
        _wait_until(lambda: other.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND classid = %s)", (LOCK_CLASS,)).fetchone()[0])
        assert results == []  # still waiting
        other.execute("SELECT pg_advisory_unlock_all()")
        waiter.join(30)
    assert [r.status for r in results] == ["done"]


def test_a_job_gives_way_to_the_apps_lock_and_records_the_failure(schema_pg: psycopg.Connection,
                                                                  pg_url: str) -> None:
    refresh_dashboard(schema_pg)  # populated: the next refresh is a concurrent one
    before = schema_pg.execute("SHOW lock_timeout").fetchone()[0]
    with psycopg.connect(pg_url) as app:
        # another session's DDL, its transaction still open
        app.execute("ALTER MATERIALIZED VIEW brand_dashboard_stats SET (autovacuum_enabled = true)")

        result = run_job(schema_pg, RefreshViews(limits=FAST))

        assert result.status == "failed"
        assert "lock" in (result.error or "")
        app.execute("SELECT 1")  # the app's transaction was not disturbed
        app.rollback()
    assert schema_pg.execute("SHOW lock_timeout").fetchone()[0] == before
    assert recent_runs(schema_pg, 1)[0]["status"] == "failed"


def test_a_failed_job_is_an_error_for_the_cli_and_needs_autocommit(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn, pytest.raises(MaintenanceError):
        run_job(conn, RefreshViews())


def _items(conn: psycopg.Connection, rows: int) -> None:
    conn.execute("CREATE TABLE items (id bigserial PRIMARY KEY, v integer NOT NULL, note text)")
    conn.execute("INSERT INTO items (v, note) SELECT g, md5(g::text) FROM generate_series(1, %s) g", (rows,))
    conn.execute("CREATE INDEX items_v_idx ON items (v)")


def test_reindex_under_concurrent_writes_loses_no_write(pg: psycopg.Connection, pg_url: str) -> None:
    _items(pg, 100_000)
    filenode = pg.execute("SELECT pg_relation_filenode('items_v_idx')").fetchone()[0]
    stop, written, failures = threading.Event(), [0], []

    def writer() -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    conn.execute("INSERT INTO items (v, note) VALUES (-1, 'during reindex')")
                    written[0] += 1
                except psycopg.Error as exc:
                    failures.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        _wait_until(lambda: written[0] > 50)
        result = run_job(pg, Reindex(tables=("items",)))
        _wait_until(lambda: written[0] > 100)
    finally:
        stop.set()
        thread.join(30)

    assert result.status == "done", result.error
    assert failures == []
    assert pg.execute("SELECT pg_relation_filenode('items_v_idx')").fetchone()[0] != filenode
    assert pg.execute("SELECT count(*) FROM items WHERE v = -1").fetchone()[0] == written[0]
    assert pg.execute("SELECT bool_and(indisvalid) FROM pg_index WHERE indrelid = 'items'::regclass").fetchone()[0]
    with pg.transaction():  # the rebuilt index holds every row, those written during the rebuild too
        pg.execute("SET LOCAL enable_seqscan = off")
        pg.execute("SET LOCAL enable_bitmapscan = off")
        plan = "\n".join(r[0] for r in pg.execute("EXPLAIN SELECT count(*) FROM items WHERE v = -1"))
        assert "items_v_idx" in plan
        assert pg.execute("SELECT count(*) FROM items WHERE v = -1").fetchone()[0] == written[0]


def test_reindex_drops_the_invalid_leftovers_of_a_failed_concurrent_rebuild(pg: psycopg.Connection) -> None:
    _items(pg, 1_000)
    pg.execute("UPDATE items SET v = 7 WHERE id <= 2")
    for name in ("items_v_idx_ccnew", "items_mine_unique"):  # a failed rebuild's, and someone else's
        with pytest.raises(psycopg.errors.UniqueViolation):
            pg.execute(sql.SQL("CREATE UNIQUE INDEX CONCURRENTLY {} ON items (v)").format(sql.Identifier(name)))

    result = run_job(pg, Reindex(tables=("items",)))

    assert result.status == "done", result.error
    assert result.detail["leftovers_dropped"] == ["public.items_v_idx_ccnew"]
    left = {r[0] for r in pg.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid")}
    assert left == {"items_mine_unique"}


def test_vacuum_analyze_also_analyzes_the_partitioned_parents(schema_pg: psycopg.Connection) -> None:
    schema_pg.execute("INSERT INTO qr_code_access (qr_code, accessed_at) "
                      "SELECT 'QR-' || g % 10, now() - g * interval '1 minute' FROM generate_series(1, 500) g")

    result = run_job(schema_pg, VacuumAnalyze())

    assert result.status == "done"
    assert result.detail["parents_analyzed"] == 2
    inherited = schema_pg.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'qr_code_access' "
                                  "AND inherited").fetchone()[0]
    assert inherited > 0  # autovacuum never gathers these for a parent


def test_maintain_on_the_command_line_runs_skips_and_plans(schema_pg: psycopg.Connection, pg_url: str) -> None:
    import json

    from tests.fix_cli import run_cli

    with psycopg.connect(pg_url, autocommit=True) as other:
        _hold_job(other, "refresh-views")
        skipped = run_cli("maintain", "run", "refresh-views", "--target", pg_url)
    done = run_cli("maintain", "run", "refresh-views", "--target", pg_url, "--json")
    plan = run_cli("maintain", "run", "partitions", "--dry-run", "--json", "--target", pg_url)

    assert skipped.code == 0 and "skipped" in skipped.stderr and "--wait" in skipped.stderr
    assert done.code == 0 and json.loads(done.stdout)["status"] == "done"
    assert plan.code == 0 and "qr_code_access" in " ".join(json.loads(plan.stdout)["create"])
    history = json.loads(run_cli("maintain", "history", "--json", "--target", pg_url).stdout)
    assert [r["status"] for r in history] == ["done", "skipped"]
