"""``bench sync``: what capture costs the app, how fast the follower applies, how far it lags.

The app is a separate process writing through plain sqlite3 (:mod:`.app_writer`), as True
Label's would; the follower runs in this process and samples its lag at every poll.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from truelabel_db.bench.copy_bench import fresh_database
from truelabel_db.capture import install_capture
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.follow import Follower, FollowOptions


@dataclass
class SyncBenchResult:
    writer_max_rate_without_capture: float = 0.0
    writer_max_rate_with_capture: float = 0.0
    backlog_changes: int = 0
    apply_seconds: float = 0.0
    steady: dict[str, Any] = field(default_factory=dict)
    burst: dict[str, Any] = field(default_factory=dict)

    @property
    def trigger_overhead(self) -> float:
        return round(1 - self.writer_max_rate_with_capture / self.writer_max_rate_without_capture, 3)

    @property
    def apply_rate(self) -> float:
        return round(self.backlog_changes / self.apply_seconds, 1) if self.apply_seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"writer_max_rate_without_capture": self.writer_max_rate_without_capture,
                "writer_max_rate_with_capture": self.writer_max_rate_with_capture,
                "trigger_overhead": self.trigger_overhead, "backlog_changes": self.backlog_changes,
                "apply_seconds": round(self.apply_seconds, 3), "apply_rate": self.apply_rate,
                "apply_vs_fastest_writer": round(self.apply_rate / max(self.writer_max_rate_without_capture, 1), 2),
                "steady": self.steady, "burst": self.burst}


def _writer(db: Path, rate: float, seconds: float, seed: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "truelabel_db.bench.app_writer", "--db", str(db),
                          "--rate", str(rate), "--seconds", str(seconds), "--seed", str(seed)],
                         capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _percentiles(samples: list[int]) -> dict[str, float]:
    if not samples:
        return {"p50_ms": 0, "p99_ms": 0, "max_ms": 0}
    ordered = sorted(samples)
    return {"p50_ms": statistics.median(ordered), "p99_ms": ordered[int(0.99 * (len(ordered) - 1))],
            "max_ms": ordered[-1], "samples": len(ordered)}


def _while_following(follower: Follower, db: Path, rate: float, seconds: float, seed: int) -> dict[str, Any]:
    follower.stats.lag_samples_ms.clear()
    thread = threading.Thread(target=lambda: follower.run(max_seconds=seconds + 30), daemon=True)
    thread.start()
    written = _writer(db, rate, seconds, seed)
    deadline = time.monotonic() + 30
    while follower.stats.lag_rows and time.monotonic() < deadline:
        time.sleep(0.05)
    follower.stop()
    thread.join()
    follower._stop.clear()  # the same follower goes on in the next phase
    return {"writer": written, **_percentiles(follower.stats.lag_samples_ms)}


def run_sync_bench(base: Path, admin_url: str, work_dir: Path, *, seconds: float = 5.0,
                   steady_rate: float = 500.0, journal: str = "delete") -> SyncBenchResult:
    """``journal``: the legacy file's journal mode, ``delete`` (Prisma's default) or ``wal``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    db = work_dir / "sync.db"
    for leftover in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(base, db)
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA journal_mode = {'WAL' if journal == 'wal' else 'DELETE'}").fetchone()
    result = SyncBenchResult()
    result.writer_max_rate_without_capture = _writer(db, 0, seconds, 1)["rate"]
    install_capture(db)
    result.writer_max_rate_with_capture = _writer(db, 0, seconds, 2)["rate"]
    url = fresh_database(admin_url, "truelabel_bench_sync")
    run_copy(db, url, CopyOptions(work_dir=work_dir / "copy", in_place=journal != "wal", resume=False))
    result.backlog_changes = int(_writer(db, 0, seconds, 3)["writes"])
    follower = Follower(db, url, FollowOptions(poll_interval=0.01))
    started = time.perf_counter()
    follower.run(until_caught_up=True)
    result.apply_seconds = time.perf_counter() - started
    result.steady = _while_following(follower, db, steady_rate, 2 * seconds, 4)
    result.burst = _while_following(follower, db, 0, seconds, 5)
    follower.close()
    return result
