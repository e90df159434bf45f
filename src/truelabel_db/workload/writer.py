"""One writer process: plans its operations, paces them, honours the gate, records outcomes.

Before each transaction unit the writer waits while the gate is up and asks it which
database is the primary, so a run goes on through a cutover (and a rollback) the way the app
does. A locked database is retried (the busy timeout already waited), a fenced one is asked
about again; a refusal ends the operation as the app's code would throw. Nothing here reads
the wall clock into the data: only the pace and the duration depend on time.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg

from truelabel_db.errors import ConfigError, TrueLabelError
from truelabel_db.workload.model import Pool
from truelabel_db.workload.oplog import OpLog, log_path
from truelabel_db.workload.options import WorkloadOptions
from truelabel_db.workload.planner import Planner
from truelabel_db.workload.postgres_target import PostgresTarget
from truelabel_db.workload.sqlite_target import SqliteTarget
from truelabel_db.workload.statements import Insert, Operation, Update
from truelabel_db.workload.summary import OperationResult, WorkloadSummary
from truelabel_db.workload.target import Fenced, Locked, Refused, Target

GATE_POLL_S = 0.2
# The live counters a run shares with its handle, by position.
PROGRESS = ("done", "committed", "refused", "lock_retries", "fence_retries", "gate_holds")
DONE, COMMITTED, REFUSED, LOCK_RETRIES, FENCE_RETRIES, GATE_HOLDS = range(len(PROGRESS))
MAX_LAG_S = 1.0  # a writer this far behind its pace drops the backlog instead of bursting


class WriteGate(Protocol):
    """What a writer needs from the cutover gate (``truelabel_db.client.AppGate`` has it)."""

    def wait_writable(self, timeout: float) -> bool: ...


class StopSignal(Protocol):
    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


@dataclass(frozen=True)
class WriterJob:
    """Everything a writer process starts from; picklable (the gate is a factory, called there)."""

    path: Path
    options: WorkloadOptions
    pool: Path  # where :meth:`Pool.save` put the pool
    writer: int
    gate: Callable[[], WriteGate] | None = None


def writer_main(job: WriterJob, stop: StopSignal, progress: Any, results: Any) -> None:
    """Process entry: run, then send the summary home, whatever happened."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us through ``stop``
    summary = WorkloadSummary(seed=job.options.seed, processes=1)
    try:
        Writer(job, stop, progress).run(summary)
    except Exception as exc:  # noqa: BLE001 - a writer's crash is reported, not lost with the process
        summary.failures.append(f"writer {job.writer}: {type(exc).__name__}: {exc}")
    results.put((job.writer, summary.to_dict()))


class Writer:
    def __init__(self, job: WriterJob, stop: StopSignal, progress: Any = None) -> None:
        self.job, self.options, self.stop, self.progress = job, job.options, stop, progress
        self.planner = Planner(job.options, Pool.load(job.pool), job.writer)
        self.gate = job.gate() if job.gate is not None else None
        self.targets: dict[str, Target] = {}
        directory = job.options.log_dir
        self.log = OpLog(log_path(directory, job.options.seed, job.writer) if directory else None)

    def run(self, summary: WorkloadSummary) -> None:
        quota = self.options.quota(self.job.writer)
        started = time.monotonic()
        pace = _Pace(self.options.rate / self.options.processes, started)
        deadline = started + self.options.seconds if self.options.seconds else None
        if self.log.path is not None:
            summary.logs.append(str(self.log.path))
        try:
            number = 0
            while (quota is None or number < quota) and not self.stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                operation = self.planner.next()
                if not pace.wait(self.stop):
                    break
                result = self.execute(operation)
                summary.record(operation.kind, operation.fk_on, operation.statements, _dirt(operation), result)
                self.log.write(number, operation, result)
                self._count(result)
                number += 1
        finally:
            summary.seconds = time.monotonic() - started
            self.close()

    def execute(self, operation: Operation) -> OperationResult:
        result = OperationResult()
        step = 0
        while step < len(operation.units):
            try:
                target = self.route(result)
                if target is None:
                    return _ended(result, "stopped", step, None, "stopped while the gate was up")
                result.rows += target.run_unit(operation.units[step], operation.fk_on)
            except Locked as exc:
                result.lock_retries += 1
                self._bump(LOCK_RETRIES)
                if self.stop.is_set():
                    return _ended(result, "stopped", step, "locked", str(exc))
                continue
            except Fenced as exc:
                if self.gate is None:  # nobody to ask where to write: the app gets the error
                    return _ended(result, "refused", step, "fenced", str(exc))
                result.fence_retries += 1
                self._bump(FENCE_RETRIES)
                if self.stop.wait(0.005):
                    return _ended(result, "stopped", step, "fenced", str(exc))
                continue
            except Refused as exc:
                return _ended(result, "refused", step, exc.reason, str(exc))
            except (sqlite3.Error, psycopg.Error, TrueLabelError, OSError) as exc:
                return _ended(result, "error", step, type(exc).__name__, str(exc).splitlines()[0])
            if not result.targets or result.targets[-1] != target.name:
                result.targets.append(target.name)
            step += 1
        return result

    def route(self, result: OperationResult) -> Target | None:
        """The target to write to now: wait while the gate is up, then write to the primary."""
        kind = self.options.target
        if self.gate is not None:
            began = time.monotonic()
            if not self.gate.wait_writable(GATE_POLL_S):
                self._bump(GATE_HOLDS)
                while not self.gate.wait_writable(GATE_POLL_S):
                    if self.stop.is_set():
                        return None
            waited_ms = (time.monotonic() - began) * 1000
            if waited_ms >= 1.0:
                result.gate_wait_ms += waited_ms
            current = getattr(self.gate, "current_primary", None)
            primary = current() if current is not None else None
            kind = primary.kind if primary is not None else kind
        return self.target(kind)

    def target(self, kind: str) -> Target:
        if kind not in self.targets:
            self.targets[kind] = self._open(kind)
        return self.targets[kind]

    def _open(self, kind: str) -> Target:
        if kind == "sqlite":
            return SqliteTarget(self.job.path, self.options.busy_timeout_ms, self.options.synchronous)
        if not self.options.postgres_url:
            raise ConfigError("the primary is PostgreSQL but the workload was given no PostgreSQL URL")
        return PostgresTarget(self.options.postgres_url)

    def _count(self, result: OperationResult) -> None:
        self._bump(DONE)
        if result.outcome in ("committed", "refused"):
            self._bump(COMMITTED if result.outcome == "committed" else REFUSED)

    def _bump(self, counter: int) -> None:
        if self.progress is not None:
            with self.progress.get_lock():
                self.progress[counter] += 1

    def close(self) -> None:
        for target in self.targets.values():
            target.close()
        self.log.close()


def _ended(result: OperationResult, outcome: str, step: int, reason: str | None,
           message: str) -> OperationResult:
    result.outcome, result.step, result.reason, result.message = outcome, step, reason, message
    return result


def _dirt(operation: Operation) -> list[str]:
    return [kind for unit in operation.units for s in unit if isinstance(s, (Insert, Update))
            for kind, _ in s.dirt.values()]


class _Pace:
    """Spreads a writer's operations evenly at ``rate`` per second (0: no pacing)."""

    def __init__(self, rate: float, started: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = started

    def wait(self, stop: StopSignal) -> bool:
        """Wait for the next slot; False if stopped meanwhile."""
        if self.interval == 0.0:
            return True
        now = time.monotonic()
        if now - self.next_at > MAX_LAG_S:
            self.next_at = now
        delay = self.next_at - now
        self.next_at += self.interval
        return not (delay > 0 and stop.wait(delay))
