"""``bench cutover``: the write pause seen by an app that honours the gate, over several runs.

A copy of the legacy file gets capture, is copied and followed; then, while a gated writer
writes QR scans at ``rate`` per second, the cutover runs. Between runs the switch is reversed
for the benchmark's sake (the writes made on PostgreSQL after the switch are removed, the fence
lifted, SQLite published as primary again, the follower caught up): the real reverse path,
replaying those writes into SQLite, is the rollback command's job.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis

from truelabel_db.bench.copy_bench import fresh_database
from truelabel_db.bench.gated_writer import WriterLedger, gated_writer
from truelabel_db.capture import install_capture
from truelabel_db.client import AppGate
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.cutover.fence import remove_fence
from truelabel_db.cutover.gate import Gate, connect_redis
from truelabel_db.cutover.run import CutoverOptions, cutover
from truelabel_db.follow import Follower


@dataclass
class CutoverBenchResult:
    runs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        pauses = [r["write_pause_ms"] for r in self.runs]
        return {"runs": self.runs, "write_pause_p100_ms": max(pauses) if pauses else None,
                "failed_writes": sum(r["failed_writes"] for r in self.runs)}


def run_cutover_bench(base: Path, admin_url: str, redis_url: str, work_dir: Path, *,
                      runs: int = 3, rate: float = 500.0, seconds_before: float = 2.0) -> CutoverBenchResult:
    work_dir.mkdir(parents=True, exist_ok=True)
    legacy = work_dir / "cutover.db"
    shutil.copyfile(base, legacy)
    install_capture(legacy)
    url = fresh_database(admin_url, "truelabel_bench_cutover")
    run_copy(legacy, url, CopyOptions(work_dir=work_dir / "copy", in_place=True))
    redis.Redis.from_url(redis_url).delete("db:readonly", "db:primary")
    gate = Gate(connect_redis(redis_url))
    result = CutoverBenchResult()
    for n in range(runs):
        gate.publish_primary("sqlite", str(legacy))
        _catch_up(legacy, url)
        stop, ledger = threading.Event(), WriterLedger()
        writer = threading.Thread(target=gated_writer, daemon=True,
                                  args=(legacy, url, AppGate(redis_url=redis_url), rate, stop, ledger))
        writer.start()
        try:
            time.sleep(seconds_before)
            report = cutover(legacy, url, CutoverOptions(redis_url=redis_url))
            time.sleep(0.5)
        finally:
            stop.set()
            writer.join()
        result.runs.append({"run": n + 1, "write_pause_ms": round(report.write_pause_ms, 1),
                            "steps": {s: round(ms, 1) for s, ms in report.steps},
                            "writes_sqlite": len(ledger.sqlite_writes),
                            "writes_postgres": len(ledger.postgres_writes),
                            "failed_writes": len(ledger.failed), "retried_writes": ledger.retried,
                            "longest_wait_ms": round(ledger.longest_wait_ms, 1)})
        _reverse(legacy, url, ledger)
    return result


def _catch_up(legacy: Path, url: str) -> None:
    follower = Follower(legacy, url)
    follower.run(until_caught_up=True)
    follower.close()


def _reverse(legacy: Path, url: str, ledger: WriterLedger) -> None:
    """Undo the switch for the next run (benchmark only; see the module docstring)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM qr_code_access WHERE id = ANY(%s::uuid[])", (ledger.postgres_writes,))
    remove_fence(legacy)
