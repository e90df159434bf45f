"""The whole life cycle under a workload that plays the app, checked after every phase.

For one seed: a legacy file is generated (rollback journal or WAL, by the seed), the workload
starts (several writer processes, foreign keys on and off, parents deleted with their
children, unique values moved), and while it writes: capture → copy → follow → cutover
(writes go on, to PostgreSQL, through the gate) → rollback (back to SQLite) → follow → a
second cutover → a final rollback. At every point where SQLite is the primary the writers are
held at the gate for a moment, the follower catches up, and ``verify`` must say equal, with
quarantined rows accounted for. The tests run it on fixed seeds; ``bench soak`` runs it for as
long as asked, a new seed per cycle; a failing seed is rerun alone with ``--seed S --cycles 1``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from truelabel_db.capture import install_capture
from truelabel_db.catalog import quarantine
from truelabel_db.client import AppGate
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.cutover.gate import Gate, connect_redis
from truelabel_db.cutover.reverse import rollback
from truelabel_db.cutover.run import CutoverOptions, cutover
from truelabel_db.follow import Follower
from truelabel_db.legacy.generator import generate
from truelabel_db.postgres import connect
from truelabel_db.verify import verify
from truelabel_db.workload import WorkloadOptions, start_workload

HOLD_GRACE_S = 0.3  # after raising the gate: lets a write that had passed it commit first


@dataclass(frozen=True)
class LifecycleOptions:
    scale: float = 0.01
    processes: int = 2
    rate: float = 150.0          # operations per second across writers
    phase_seconds: float = 2.0   # how long the workload writes between steps
    fk_on_share: float = 0.8
    dirt_rate: float = 0.0


@dataclass
class Phase:
    name: str
    ok: bool
    seconds: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class CycleResult:
    seed: int
    journal_mode: str
    options: LifecycleOptions = field(default_factory=LifecycleOptions)
    phases: list[Phase] = field(default_factory=list)
    workload: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.phases) and bool(self.phases) and not self.workload.get("failures")

    def reproduce(self) -> str:
        """The command that reruns this seed's cycle: the same operations, the same steps."""
        o = self.options
        return (f"truelabel-db bench soak --seed {self.seed} --cycles 1 --scale {o.scale} --rate {o.rate} "
                f"--processes {o.processes} --phase-seconds {o.phase_seconds} --dirt-rate {o.dirt_rate}")

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "journal_mode": self.journal_mode, "ok": self.ok, "reproduce": self.reproduce(),
                "phases": [asdict(p) for p in self.phases], "workload": self.workload}


class _PhaseFailed(Exception):
    pass


class _Cycle:
    def __init__(self, seed: int, work_dir: Path, pg_url: str, redis_url: str, options: LifecycleOptions,
                 say: Callable[[str], None]) -> None:
        self.seed, self.pg_url, self.redis_url, self.options, self.say = seed, pg_url, redis_url, options, say
        self.work_dir = work_dir
        self.legacy = work_dir / f"lifecycle-{seed}.db"
        self.result = CycleResult(seed, "wal" if seed % 2 else "delete", options)

    def run(self) -> CycleResult:
        generate(self.legacy, self.options.scale, seed=self.seed)
        Gate(connect_redis(self.redis_url)).publish_primary("sqlite", str(self.legacy.resolve()))
        install_capture(self.legacy)
        workload = start_workload(self.legacy, WorkloadOptions(
            seed=self.seed, processes=self.options.processes, rate=self.options.rate,
            journal_mode=self.result.journal_mode, fk_on_share=self.options.fk_on_share,
            dirt_rate=self.options.dirt_rate, postgres_url=self.pg_url,
            log_dir=self.work_dir / f"oplog-{self.seed}"), gate=partial(AppGate, redis_url=self.redis_url))
        try:
            self._steps(workload)
        except _PhaseFailed:
            pass  # recorded by the phase itself
        except Exception as exc:  # noqa: BLE001 - a cycle reports what failed and goes on to the next seed
            self.result.phases.append(Phase("error", False, 0.0, {"error": f"{type(exc).__name__}: {exc}"}))
        finally:
            workload.stop()
            summary = workload.join()
            self.result.workload = {
                "operations": summary.operations, "committed": summary.committed,
                "refused": sum(summary.refused.values()), "errors": summary.outcomes["error"],
                "fk_off": summary.fk_off, "targets": dict(summary.targets),
                "failures": (summary.failures + summary.errors)[:5]}
        return self.result

    def let_the_app_write(self) -> bool:
        time.sleep(self.options.phase_seconds)
        return True

    def _steps(self, workload: Any) -> None:
        self.phase("copy", lambda: run_copy(self.legacy, self.pg_url, CopyOptions(
            work_dir=self.work_dir / f"copy-{self.seed}", workers=2)).reconciled)
        self.phase("checked after copy", self.check)
        self.phase("follow", self.follow_for_a_while)
        self.phase("checked after follow", self.check)
        self.phase("cutover", lambda: self.cutover())
        self.phase("app writes to PostgreSQL", self.let_the_app_write)
        self.phase("rollback", lambda: self.rollback())
        self.phase("checked after rollback", self.check)
        self.phase("follow again", self.follow_for_a_while)
        self.phase("second cutover", lambda: self.cutover())
        self.phase("app writes to PostgreSQL again", self.let_the_app_write)
        workload.stop()
        workload.wait()
        self.phase("final rollback", lambda: self.rollback())
        self.phase("checked at the end", self.check)

    def phase(self, name: str, action: Callable[[], Any]) -> None:
        started = time.perf_counter()
        outcome = action()
        ok, detail = (outcome if isinstance(outcome, tuple) else (bool(outcome), {}))
        phase = Phase(name, ok, round(time.perf_counter() - started, 2), detail)
        self.result.phases.append(phase)
        self.say(f"seed {self.seed}: {name:<32} {'ok' if ok else 'FAILED'} {detail or ''}")
        if not ok:
            raise _PhaseFailed(name)

    def follow_for_a_while(self) -> bool:
        follower = Follower(self.legacy, self.pg_url)
        try:
            follower.run(max_seconds=self.options.phase_seconds)
        finally:
            follower.close()
        return True

    def check(self) -> tuple[bool, dict[str, Any]]:
        """Hold the writers at the gate, catch up, and verify: SQLite and PostgreSQL must be equal."""
        gate = Gate(connect_redis(self.redis_url))
        gate.raise_(ttl_ms=120_000, reason="lifecycle-check")
        try:
            time.sleep(HOLD_GRACE_S)
            follower = Follower(self.legacy, self.pg_url)
            try:
                follower.run(until_caught_up=True)
            finally:
                follower.close()
            report = verify(self.legacy, self.pg_url)
            with connect(self.pg_url) as conn:
                held = sum(quarantine.open_counts(conn).values())
            differing = {name: v.to_dict() for name, v in report.tables.items() if not v.equal}
            return report.equal, {"quarantined": held, **({"differing": differing} if differing else {})}
        finally:
            gate.lower()

    def cutover(self) -> tuple[bool, dict[str, Any]]:
        report = cutover(self.legacy, self.pg_url, CutoverOptions(redis_url=self.redis_url))
        return report.switched, {"write_pause_ms": round(report.write_pause_ms, 1),
                                 "steps_ms": {name: round(ms) for name, ms in report.steps}}

    def rollback(self) -> tuple[bool, dict[str, Any]]:
        report = rollback(self.legacy, self.pg_url, self.redis_url)
        return True, {"replayed": report.replayed, "write_pause_ms": round(report.write_pause_ms, 1)}


def run_cycle(seed: int, work_dir: Path, pg_url: str, redis_url: str,
              options: LifecycleOptions = LifecycleOptions(), say: Callable[[str], None] = lambda _: None) -> CycleResult:
    """One seed's whole life cycle into an empty database ``pg_url``; never raises for a failed check."""
    work_dir.mkdir(parents=True, exist_ok=True)
    return _Cycle(seed, work_dir, pg_url, redis_url, options, say).run()


@dataclass
class SoakReport:
    cycles: list[CycleResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.cycles) and all(c.ok for c in self.cycles)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "seconds": round(self.seconds, 1), "cycles": [c.to_dict() for c in self.cycles],
                "failing_seeds": [c.seed for c in self.cycles if not c.ok]}


def run_soak(seed: int, admin_url: str, redis_url: str, work_dir: Path, *, minutes: float | None = None,
             cycles: int | None = None, options: LifecycleOptions = LifecycleOptions(),
             say: Callable[[str], None] = lambda _: None) -> SoakReport:
    """Cycles with seeds ``seed``, ``seed + 1``, … until ``minutes`` have passed or ``cycles`` ran.

    Each cycle gets a fresh database (created from ``admin_url``, dropped afterwards) and the
    Redis database of ``redis_url`` emptied first: give it one of its own.
    """
    import redis

    from truelabel_db.bench.copy_bench import fresh_database

    report, started = SoakReport(), time.monotonic()
    deadline = started + minutes * 60 if minutes else None
    current = seed
    while (cycles is None or len(report.cycles) < cycles) and (deadline is None or time.monotonic() < deadline):
        redis.Redis.from_url(redis_url).flushdb()
        name = f"truelabel_soak_{current}"
        url = fresh_database(admin_url, name)
        try:
            report.cycles.append(run_cycle(current, work_dir / f"seed-{current}", url, redis_url, options, say))
        finally:
            _drop(admin_url, name)
        current += 1
    report.seconds = time.monotonic() - started
    return report


def _drop(admin_url: str, name: str) -> None:
    from psycopg import sql

    with connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
