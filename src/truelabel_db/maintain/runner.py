"""Running one maintenance job so that it never blocks the app and never runs twice at once.

Every job runs on an autocommit connection (REINDEX CONCURRENTLY, DETACH CONCURRENTLY and
VACUUM refuse a transaction block) with a short ``lock_timeout``: a statement that would wait
for the app's locks gives up instead of queueing the app behind it, and the job retries it a
few times with a pause in between. A ``statement_timeout`` bounds everything else. A
session-level advisory lock keyed by the job's name makes a second run of the same job skip
(or, asked to, wait); each run leaves a run record in the catalog.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from truelabel_db.catalog import maintenance_runs
from truelabel_db.errors import ExitCode, TrueLabelError
from truelabel_db.postgres import one

LOCK_CLASS = 0x7E1A  # the advisory-lock namespace of truelabel-db's maintenance jobs
RETRY_PAUSES = (0.5, 2.0, 5.0)  # after a statement gave way to the app's locks


class MaintenanceError(TrueLabelError):
    """A maintenance job failed; its run is recorded as failed with the reason."""

    exit_code = ExitCode.MAINTENANCE


@dataclass(frozen=True)
class Limits:
    """How long a job's statements may wait for a lock, and run at all, in milliseconds."""

    lock_timeout_ms: int = 2_000
    statement_timeout_ms: int = 30 * 60_000
    retry_pauses: tuple[float, ...] = RETRY_PAUSES  # seconds between attempts after giving way


class Job(Protocol):
    """A named maintenance task: ``run`` does the work on an autocommit connection."""

    name: str
    limits: Limits

    def run(self, conn: psycopg.Connection) -> dict[str, Any]: ...


@dataclass
class JobResult:
    job: str
    status: str  # done | skipped | failed
    run_id: int | None
    seconds: float
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "status": self.status, "run_id": self.run_id,
                "seconds": round(self.seconds, 3), "detail": self.detail, "error": self.error}


def lock_key(job_name: str) -> sql.Composed:
    """The advisory lock of one job: our namespace and a hash of the job's name."""
    return sql.SQL("{}, hashtext({})").format(sql.Literal(LOCK_CLASS), sql.Literal(job_name))


def ensure_run_table(conn: psycopg.Connection) -> None:
    """Create the run records' table when the schema predates it (idempotent DDL)."""
    maintenance_runs.ensure_table(conn)


def run_job(conn: psycopg.Connection, job: Job, *, wait: bool = False) -> JobResult:
    """Run ``job`` unless another run holds it; record the run; restore the session after.

    ``conn`` must be in autocommit mode. With ``wait`` a busy job is waited for instead of
    skipped. A failure is recorded and returned as ``failed`` (the caller decides to raise).
    """
    if not conn.autocommit:
        raise MaintenanceError("maintenance jobs need an autocommit connection")
    ensure_run_table(conn)
    started = time.perf_counter()
    if not _acquire(conn, job.name, wait):
        holder = _holder(conn, job.name)
        run_id = _record(conn, job.name, "skipped", holder)
        return JobResult(job.name, "skipped", run_id, time.perf_counter() - started, holder)
    try:
        run_id = _record(conn, job.name, "running", {})
        with session_limits(conn, job.limits):
            try:
                detail = job.run(conn)
            except (psycopg.Error, MaintenanceError) as exc:
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                _finish(conn, run_id, "failed", {}, message)
                return JobResult(job.name, "failed", run_id, time.perf_counter() - started, {}, message)
        _finish(conn, run_id, "done", detail, None)
        return JobResult(job.name, "done", run_id, time.perf_counter() - started, detail)
    finally:
        conn.execute(sql.SQL("SELECT pg_advisory_unlock({})").format(lock_key(job.name)))


def _acquire(conn: psycopg.Connection, name: str, wait: bool) -> bool:
    if not wait:
        query = sql.SQL("SELECT pg_try_advisory_lock({})").format(lock_key(name))
        return bool(one(conn.execute(query))[0])
    with session_limits(conn, Limits(lock_timeout_ms=0, statement_timeout_ms=0)):
        conn.execute(sql.SQL("SELECT pg_advisory_lock({})").format(lock_key(name)))
    return True


def _holder(conn: psycopg.Connection, name: str) -> dict[str, Any]:
    """Who holds the job right now, for the skip message: its backend pid and start time."""
    row = conn.execute(sql.SQL(
        "SELECT l.pid, a.backend_start, a.application_name FROM pg_locks l "
        "LEFT JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
        "AND l.granted AND l.classid = {} AND l.objid = hashtext({})::oid AND l.objsubid = 2"
    ).format(sql.Literal(LOCK_CLASS), sql.Literal(name))).fetchone()
    if row is None:
        return {"reason": "another run holds the job"}
    return {"reason": "another run holds the job", "holder_pid": row[0],
            "holder_since": str(row[1]), "holder_application": row[2]}


def _record(conn: psycopg.Connection, name: str, status: str, detail: dict[str, Any]) -> int:
    return maintenance_runs.start(conn, name, status, detail)


def _finish(conn: psycopg.Connection, run_id: int, status: str, detail: dict[str, Any],
            error: str | None) -> None:
    maintenance_runs.finish(conn, run_id, status, detail, error)


@contextmanager
def session_limits(conn: psycopg.Connection, limits: Limits) -> Iterator[None]:
    """Set lock and statement timeouts for the block; put the caller's values back after."""
    names = ("lock_timeout", "statement_timeout")
    before = [one(conn.execute(sql.SQL("SELECT current_setting({})").format(sql.Literal(n))))[0]
              for n in names]
    values = (f"{limits.lock_timeout_ms}ms", f"{limits.statement_timeout_ms}ms")
    for name, value in zip(names, values):
        conn.execute("SELECT set_config(%s, %s, false)", (name, value))
    try:
        yield
    finally:
        if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            for name, value in zip(names, before):
                conn.execute("SELECT set_config(%s, %s, false)", (name, value))


def giving_way(action: Callable[[], object], *, pauses: tuple[float, ...] = RETRY_PAUSES,
               before_retry: Callable[[], object] | None = None) -> int:
    """Run ``action``; when it gave up waiting for a lock, pause and try again, a few times.

    Returns how many times it had to give way. The last failure propagates: the job records
    that the app kept the object busy, which is the right outcome for a job that must not win.
    """
    for attempt, pause in enumerate((*pauses, None)):
        try:
            action()
            return attempt
        except pg_errors.LockNotAvailable:
            if pause is None:
                raise
            time.sleep(pause)
            if before_retry is not None:
                before_retry()
    return len(pauses)


def recent_runs(conn: psycopg.Connection, limit: int = 20, job: str | None = None) -> list[dict[str, Any]]:
    """The latest run records, newest first (``maintain history``)."""
    ensure_run_table(conn)
    return maintenance_runs.recent(conn, limit, job)
