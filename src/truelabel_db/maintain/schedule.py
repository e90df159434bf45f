"""When the jobs run (plan §6.2's times, in UTC): through pg_cron where the server has it, else a
built-in scheduler daemon.

The daemon is a :class:`Scheduler` driven by a clock that tests can step: each ``tick(now)``
runs every job whose cron expression matched a minute in ``(last tick, now]``, once, through the
same runner as ``maintain run`` (advisory lock, timeouts, run records). A minute missed while the
daemon was down is not caught up; the next matching minute runs the job.

pg_cron runs a job's command inside a transaction, so VACUUM, REINDEX CONCURRENTLY and DETACH
CONCURRENTLY cannot be its commands, and it cannot start our runner. What it can run well is
installed: ``VACUUM (ANALYZE, SKIP_LOCKED)`` alone (a single statement runs outside a
transaction), the dashboard refresh and partitions created ahead, each with ``SET LOCAL``
timeouts. Retention drops and the reindex stay with the daemon (or an OS cron calling
``truelabel-db maintain run``, see :func:`crontab_lines`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import psycopg
from psycopg import sql

from truelabel_db.catalog import cache_changes
from truelabel_db.errors import ConfigError, TargetError
from truelabel_db.maintain.jobs import job_named
from truelabel_db.maintain.runner import JobResult, run_job
from truelabel_db.postgres import one

PLAN_SCHEDULE: dict[str, str] = {  # plan §6.2
    "vacuum-analyze": "0 3 * * *",   # daily at 03:00
    "reindex": "0 4 * * 0",          # weekly, Sunday 04:00
    "partitions": "0 5 * * *",       # daily at 05:00
    "refresh-views": "*/10 * * * *",  # every 10 minutes
    "trim-cache-log": "*/5 * * * *",  # ours: the cache's change log keeps 15 minutes
}
FIELD_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


@dataclass(frozen=True)
class CronExpression:
    """Five-field cron (minute hour day-of-month month day-of-week; Sunday is 0 or 7)."""

    text: str
    allowed: tuple[frozenset[int], ...]

    @classmethod
    def parse(cls, text: str) -> "CronExpression":
        fields = text.split()
        if len(fields) != 5:
            raise ConfigError(f"cron expression {text!r} needs five fields")
        allowed = tuple(_parse_field(f, lo, hi, text) for f, (lo, hi) in zip(fields, FIELD_RANGES))
        dow = allowed[4] | ({0} if 7 in allowed[4] else set())
        return cls(text, (*allowed[:4], frozenset(dow)))

    def matches(self, moment: datetime) -> bool:
        m = moment.astimezone(timezone.utc)
        values = (m.minute, m.hour, m.day, m.month, (m.weekday() + 1) % 7)
        return all(v in allowed for v, allowed in zip(values, self.allowed))


def _parse_field(field_text: str, lo: int, hi: int, whole: str) -> frozenset[int]:
    values: set[int] = set()
    for part in field_text.split(","):
        base, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                first, last = lo, hi
            elif "-" in base:
                first, last = (int(x) for x in base.split("-", 1))
            else:
                first = last = int(base)
        except ValueError:
            raise ConfigError(f"cron expression {whole!r}: cannot read {part!r}") from None
        top = 7 if hi == 6 else hi
        if step < 1 or first < lo or last > top or first > last:
            raise ConfigError(f"cron expression {whole!r}: {part!r} is out of range {lo}-{hi}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass
class Scheduler:
    """Runs due jobs at each tick; ``run`` is how a job is run (the runner, or a test double)."""

    url: str
    schedule: dict[str, str] = field(default_factory=lambda: dict(PLAN_SCHEDULE))
    run: Callable[[str], JobResult] | None = None
    last_tick: datetime | None = None
    history: list[tuple[datetime, JobResult]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.expressions = {name: CronExpression.parse(expr) for name, expr in self.schedule.items()}
        for name in self.expressions:
            job_named(name)  # an unknown job is a configuration error now, not at 03:00

    def due(self, now: datetime) -> list[str]:
        """Jobs whose schedule matched a minute after the last tick, up to and including ``now``."""
        minutes = list(_minutes_between(self.last_tick, now))
        return [name for name, expr in self.expressions.items() if any(expr.matches(m) for m in minutes)]

    def tick(self, now: datetime) -> list[JobResult]:
        results = [(now, self._run(name)) for name in self.due(now)]
        self.last_tick = now
        self.history += results
        return [r for _, r in results]

    def _run(self, name: str) -> JobResult:
        if self.run is not None:
            return self.run(name)
        from truelabel_db.postgres import connect

        with connect(self.url, autocommit=True, application_name=f"truelabel-db maintain {name}") as conn:
            return run_job(conn, job_named(name))

    def serve_forever(self, *, stop: Callable[[], bool] = lambda: False,
                      on_result: Callable[[JobResult], None] = lambda r: None) -> None:
        """The daemon: tick at the start of every minute until ``stop()``."""
        self.last_tick = self.last_tick or datetime.now(timezone.utc)
        while not stop():
            now = datetime.now(timezone.utc)
            for result in self.tick(now):
                on_result(result)
            time.sleep(max(0.5, 60 - now.second - now.microsecond / 1e6))


def _minutes_between(after: datetime | None, until: datetime) -> Iterable[datetime]:
    end = until.astimezone(timezone.utc).replace(second=0, microsecond=0)
    if after is None:
        yield end
        return
    minute = after.astimezone(timezone.utc).replace(second=0, microsecond=0) + timedelta(minutes=1)
    while minute <= end:
        yield minute
        minute += timedelta(minutes=1)


# -- pg_cron -------------------------------------------------------------------------------------

CRON_JOB_PREFIX = "truelabel-"


def pg_cron_commands(ahead: int = 3) -> dict[str, tuple[str, str]]:
    """The pg_cron jobs installed: name → (schedule, command). Each command is one transaction."""
    ensure = sql.SQL(
        "SET LOCAL lock_timeout = '1s'; SET LOCAL statement_timeout = '10min'; "
        "SELECT truelabel_meta.ensure_month_partitions(c.oid, now(), now() + {}) "
        "FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
    ).format(sql.Literal(f"{ahead} months")).as_string(None)
    return {
        "vacuum-analyze": (PLAN_SCHEDULE["vacuum-analyze"], "VACUUM (ANALYZE, SKIP_LOCKED)"),
        "refresh-views": (PLAN_SCHEDULE["refresh-views"],
                          "SET LOCAL lock_timeout = '2s'; SET LOCAL statement_timeout = '5min'; "
                          "SELECT refresh_dashboard_stats()"),
        "partitions-ahead": (PLAN_SCHEDULE["partitions"], ensure),
        "trim-cache-log": (PLAN_SCHEDULE["trim-cache-log"],
                           sql.SQL("SELECT truelabel_meta.trim_cache_changes({})").format(
                               sql.Literal(f"{int(cache_changes.KEEP.total_seconds())} seconds")).as_string(None)),
    }


def has_pg_cron(conn: psycopg.Connection) -> bool:
    return bool(one(conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron')"))[0])


def install_pg_cron(conn: psycopg.Connection, *, ahead: int = 3) -> dict[str, int]:
    """Schedule the jobs pg_cron can run, in this database; idempotent (same names, replaced).

    pg_cron must be in ``shared_preload_libraries`` and its extension created in the database
    named by ``cron.database_name``; the error says which is missing.
    """
    if not has_pg_cron(conn):
        loaded = "pg_cron" in one(conn.execute("SHOW shared_preload_libraries"))[0]
        hint = ("CREATE EXTENSION pg_cron in the database named by cron.database_name" if loaded else
                "add pg_cron to shared_preload_libraries, restart, then CREATE EXTENSION pg_cron")
        raise TargetError(f"pg_cron is not available here: {hint}; or run `maintain schedule --daemon`")
    dbname = conn.info.dbname
    installed = {}
    for name, (expression, command) in pg_cron_commands(ahead).items():
        installed[name] = int(one(conn.execute(
            "SELECT cron.schedule_in_database(%s, %s, %s, %s)",
            (CRON_JOB_PREFIX + name, expression, command, dbname)))[0])
    return installed


def crontab_lines(executable: str = "truelabel-db") -> list[str]:
    """The plan's schedule as crontab lines calling ``maintain run`` (for an OS scheduler).

    The target URL is expected in the environment (``TRUELABEL_TARGET_URL``), never on the line.
    """
    return ["CRON_TZ=UTC"] + [f"{expr} {executable} maintain run {name}" for name, expr in PLAN_SCHEDULE.items()]
