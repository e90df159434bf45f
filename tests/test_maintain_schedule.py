"""The schedule: the plan's times, kept by a scheduler whose clock a test can step, and pg_cron
where the server has it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from truelabel_db.embedded import EmbeddedCluster
from truelabel_db.errors import ConfigError, TargetError
from truelabel_db.maintain.schedule import (
    CronExpression,
    Scheduler,
    install_pg_cron,
    pg_cron_commands,
)
from truelabel_db.schema.ddl import apply_schema

SATURDAY_EVENING = datetime(2026, 11, 28, 23, 55, tzinfo=timezone.utc)  # Sunday 29 follows


def test_a_stepped_day_runs_each_job_at_the_plans_times_against_the_database(
        schema_pg: psycopg.Connection, pg_url: str) -> None:
    scheduler = Scheduler(pg_url, last_tick=SATURDAY_EVENING)
    now = SATURDAY_EVENING
    while now < SATURDAY_EVENING + timedelta(hours=5, minutes=10):  # until Sunday 05:05
        now += timedelta(minutes=1)
        scheduler.tick(now)

    ran = [(at.strftime("%a %H:%M"), r.job, r.status) for at, r in scheduler.history]
    assert ("Sun 03:00", "vacuum-analyze", "done") in ran
    assert ("Sun 04:00", "reindex", "done") in ran
    assert ("Sun 05:00", "partitions", "done") in ran
    refreshes = [at for at, job, _ in ran if job == "refresh-views"]
    assert refreshes[:2] == ["Sun 00:00", "Sun 00:10"] and len(refreshes) == 31
    recorded = dict(schema_pg.execute("SELECT job, count(*) FROM truelabel_meta.maintenance_runs "
                                      "WHERE status = 'done' GROUP BY job").fetchall())
    assert recorded == {"vacuum-analyze": 1, "reindex": 1, "partitions": 1, "refresh-views": 31,
                        "trim-cache-log": 62}  # every 5 minutes: the cache's change log


def test_a_long_sleep_runs_a_due_job_once_not_once_per_missed_minute() -> None:
    calls: list[str] = []
    scheduler = Scheduler("unused", run=lambda name: calls.append(name), last_tick=SATURDAY_EVENING)  # type: ignore[arg-type, func-returns-value]
    scheduler.tick(SATURDAY_EVENING + timedelta(hours=1))
    assert calls == ["refresh-views", "trim-cache-log"]
    scheduler.tick(SATURDAY_EVENING + timedelta(hours=1, seconds=30))  # same minute again: nothing
    assert calls == ["refresh-views", "trim-cache-log"]


def test_the_reindex_is_weekly_on_sunday() -> None:
    weekly = CronExpression.parse("0 4 * * 0")
    assert weekly.matches(datetime(2026, 11, 29, 4, 0, tzinfo=timezone.utc))  # a Sunday
    assert not weekly.matches(datetime(2026, 11, 30, 4, 0, tzinfo=timezone.utc))
    assert CronExpression.parse("0 4 * * 7").matches(datetime(2026, 11, 29, 4, 0, tzinfo=timezone.utc))


@pytest.mark.parametrize("text", ["* * * *", "61 * * * *", "*/0 * * * *", "a * * * *", "5-2 * * * *"])
def test_a_bad_cron_expression_is_a_configuration_error(text: str) -> None:
    with pytest.raises(ConfigError):
        CronExpression.parse(text)


def test_an_unknown_job_in_a_schedule_is_refused_at_once() -> None:
    with pytest.raises(ConfigError):
        Scheduler("unused", schedule={"defrag": "0 3 * * *"})


def test_pg_cron_gets_the_jobs_it_can_run_and_installing_twice_changes_nothing(
        cron_cluster: EmbeddedCluster) -> None:
    with psycopg.connect(cron_cluster.url, autocommit=True) as conn:
        with pytest.raises(TargetError, match="CREATE EXTENSION pg_cron"):
            install_pg_cron(conn)
        apply_schema(conn)
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        install_pg_cron(conn)
        install_pg_cron(conn)
        jobs = dict(conn.execute("SELECT jobname, schedule FROM cron.job").fetchall())
        assert jobs == {"truelabel-vacuum-analyze": "0 3 * * *", "truelabel-refresh-views": "*/10 * * * *",
                        "truelabel-partitions-ahead": "0 5 * * *", "truelabel-trim-cache-log": "*/5 * * * *"}
        # each command is valid SQL here: run them as pg_cron would, one transaction each
        for name, (_, command) in pg_cron_commands().items():
            if name != "vacuum-analyze":
                with conn.transaction():
                    conn.execute(command)
        assert conn.execute("SELECT relispopulated FROM pg_class WHERE relname = 'brand_dashboard_stats'").fetchone()[0]


def test_without_pg_cron_loaded_installing_says_how(pg: psycopg.Connection) -> None:
    with pytest.raises(TargetError, match="shared_preload_libraries"):
        install_pg_cron(pg)
