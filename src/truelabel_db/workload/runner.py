"""Running a workload: writer processes started, paced, stopped, and their summaries merged.

Writers are processes (``spawn``, so nothing of the caller's threads or connections leaks
into them), each with a seed derived from the run's. The pool they plan from is read here,
once, before any of them starts; that is what makes a run replayable from its seed.
"""

from __future__ import annotations

import multiprocessing
import queue
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from truelabel_db.errors import ConfigError
from truelabel_db.legacy.schema import read_schema
from truelabel_db.legacy.source import connect, require_tables, translate_sqlite_error
from truelabel_db.workload.model import POOL_COLUMNS, Pool, read_pool
from truelabel_db.workload.options import WorkloadOptions
from truelabel_db.workload.planner import KINDS
from truelabel_db.workload.summary import WorkloadSummary
from truelabel_db.workload.writer import PROGRESS, WriteGate, WriterJob, writer_main


class Stoppable(Protocol):
    def is_set(self) -> bool: ...


def prepare(path: Path, options: WorkloadOptions) -> Pool:
    """Check the options and the file, set the journal mode, read the pool."""
    options.check(KINDS)
    conn = connect(path, read_only=options.journal_mode is None, busy_timeout_ms=options.busy_timeout_ms)
    try:
        require_tables(read_schema(conn), list(POOL_COLUMNS), path)
        if options.journal_mode is not None:
            _set_journal_mode(conn, options.journal_mode, path)
        return read_pool(conn, options.pool_limit)
    except sqlite3.Error as exc:
        raise translate_sqlite_error(exc, path) from exc
    finally:
        conn.close()


def _set_journal_mode(conn: sqlite3.Connection, mode: str, path: Path) -> None:
    now = str(conn.execute(f"PRAGMA journal_mode = {'WAL' if mode == 'wal' else 'DELETE'}").fetchone()[0])
    if now.lower() != mode:
        raise ConfigError(f"{path} stayed in {now} mode (another connection holds it?); wanted {mode}")


class WorkloadHandle:
    """A workload running in the background: ``stop()`` it, ``join()`` it for the summary."""

    def __init__(self, options: WorkloadOptions, processes: list[Any], stop: Any, progress: Any,
                 results: Any, workdir: Path) -> None:
        self.options, self._workdir = options, workdir
        self._processes, self._stop, self._progress, self._results = processes, stop, progress, results
        self._summary: WorkloadSummary | None = None

    @property
    def running(self) -> bool:
        return any(p.is_alive() for p in self._processes)

    def progress(self) -> dict[str, int]:
        """Live counts across writers: operations done, committed and refused so far, lock
        and fence retries, and how many times a writer found the gate up."""
        with self._progress.get_lock():
            values = self._progress[:]
        return dict(zip(PROGRESS, values))

    def stop(self) -> None:
        """Ask every writer to stop after its current operation (non-blocking)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every writer has finished; False if still running after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.running:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def join(self) -> WorkloadSummary:
        """Wait for the writers (they end on their own, or after ``stop()``) and merge their summaries."""
        if self._summary is None:
            self._summary = self._collect()
        return self._summary

    def _collect(self) -> WorkloadSummary:
        received: dict[int, dict[str, Any]] = {}
        while len(received) < len(self._processes):
            try:
                writer, data = self._results.get(timeout=0.2)
                received[writer] = data
            except queue.Empty:
                if not self.running and self._results.empty():
                    break
        for process in self._processes:
            process.join()
        shutil.rmtree(self._workdir, ignore_errors=True)
        summary = WorkloadSummary(seed=self.options.seed, processes=len(self._processes))
        for writer in range(len(self._processes)):
            if writer in received:
                summary.merge(WorkloadSummary.from_dict(received[writer]))
            else:
                code = self._processes[writer].exitcode
                summary.failures.append(f"writer {writer} ended (exit code {code}) without a summary")
        return summary

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
        self.join()


def start_workload(path: Path, options: WorkloadOptions,
                   gate: Callable[[], WriteGate] | None = None) -> WorkloadHandle:
    """Start the writers and return at once. ``gate`` is a picklable factory (say
    ``functools.partial(AppGate, redis_url=...)``) that each writer calls for its own gate."""
    workdir = Path(tempfile.mkdtemp(prefix="truelabel-workload-"))
    pool = workdir / "pool.json"
    try:
        prepare(path, options).save(pool)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    context = multiprocessing.get_context("spawn")
    stop, progress, results = context.Event(), context.Array("q", len(PROGRESS)), context.Queue()
    processes = []
    for writer in range(options.processes):
        job = WriterJob(path, options, pool, writer, gate)
        process = context.Process(target=writer_main, args=(job, stop, progress, results),
                                  name=f"truelabel-workload-{writer}", daemon=True)
        process.start()
        processes.append(process)
    return WorkloadHandle(options, processes, stop, progress, results, workdir)


def run_workload(path: Path, options: WorkloadOptions, stop_event: Stoppable | None = None,
                 gate: Callable[[], WriteGate] | None = None,
                 progress: Callable[[dict[str, int]], None] | None = None) -> WorkloadSummary:
    """Run a workload to its end (``seconds``, ``operations``, or ``stop_event`` set) and summarise it.

    ``progress`` is called about once a second with :meth:`WorkloadHandle.progress`. Ctrl-C
    stops the writers after their current operation; the summary says it was interrupted.
    """
    if options.seconds is None and options.operations is None and stop_event is None:
        raise ConfigError("give the workload an end: --seconds or --operations")
    handle = start_workload(path, options, gate)
    interrupted = False
    reported = time.monotonic()
    try:
        while not handle.wait(0.05):
            if stop_event is not None and stop_event.is_set():
                handle.stop()
            if progress is not None and time.monotonic() - reported >= 1.0:
                progress(handle.progress())
                reported = time.monotonic()
    except KeyboardInterrupt:
        handle.stop()
        interrupted = True
    summary = handle.join()
    summary.interrupted = summary.interrupted or interrupted
    return summary
