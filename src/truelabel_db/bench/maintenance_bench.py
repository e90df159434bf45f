"""``bench maintenance``: does maintenance move the app's latency, is the bloat estimate right,
how far behind does a replica fall under load — in one run, on a private cluster.

A clean legacy file of the chosen scale is copied into a private PostgreSQL cluster. Then, while
the app load (``pg_app_load``, its own process) runs at a steady rate, each phase measures the
app's p50/p99: without maintenance (three times: first, in the middle and last, so that their
spread says what noise is) and with each job running back to back for the whole phase. Before
the ``partitions`` phase, a year of monthly partitions with rows from 2000 is added and the
retention set just past the generated data, so that the job detaches and drops those twelve
while the app writes into the same table, and no generated row.

Bloat: copies of ``products`` lose a known fraction of their rows (spread over every page);
the statistics-based estimate is set beside pgstattuple's exact measure. Replica: a streaming
replica is made with ``replica add``'s code and its lag sampled every 100 ms under the load.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg

from truelabel_db.bench.pg_app_load import URL_ENV
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.embedded import EmbeddedCluster, free_port
from truelabel_db.maintain.jobs import job_named
from truelabel_db.maintain.partitions import PartitionMaintenance
from truelabel_db.maintain.runner import run_job
from truelabel_db.monitor.bloat import bloat_of
from truelabel_db.monitor.replication import replica_lag_seconds
from truelabel_db.postgres import one
from truelabel_db.replicas.add import add_replica

PHASES = (None, "vacuum-analyze", "reindex", None, "partitions", "refresh-views", None)  # None: no job
BLOAT_FRACTIONS = (0.1, 0.3, 0.5)
CLUSTER_SETTINGS = {"shared_buffers": "256MB", "max_wal_size": "2GB", "checkpoint_timeout": "15min"}


@dataclass
class MaintenanceBenchResult:
    scale: float
    rows: int
    rate: float
    phases: list[dict[str, Any]] = field(default_factory=list)
    bloat: list[dict[str, Any]] = field(default_factory=list)
    replica: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        baselines = [p["app"]["p99_ms"] for p in self.phases if p["job"] is None]
        noise = round(max(baselines) - min(baselines), 2) if len(baselines) > 1 else None
        return {"scale": self.scale, "rows": self.rows, "rate": self.rate, "phases": self.phases,
                "p99_noise_ms": noise, "bloat": self.bloat, "replica": self.replica}


def app_load(url: str, rate: float, seconds: float) -> subprocess.Popen[str]:
    """The app's load in a process of its own; the URL (which may hold a password) in its environment."""
    return subprocess.Popen([sys.executable, "-m", "truelabel_db.bench.pg_app_load",
                             "--rate", str(rate), "--seconds", str(seconds)],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, URL_ENV: url})


def _finish(load: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = load.communicate()
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def measure_phase(url: str, job: str | None, rate: float, seconds: float,
                  retention: int = 6) -> dict[str, Any]:
    """The app's latency for ``seconds`` while ``job`` (if any) runs back to back."""
    load = app_load(url, rate, seconds)
    runs: list[float] = []
    statuses: set[str] = set()
    time.sleep(0.5)
    deadline = time.monotonic() + seconds - 1.0
    if job is not None:
        with psycopg.connect(url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                chosen = job_named(job)
                if isinstance(chosen, PartitionMaintenance):
                    chosen.retention = retention
                result = run_job(conn, chosen)
                runs.append(round(result.seconds, 3))
                statuses.add(result.status if result.status != "failed" else f"failed: {result.error}")
    return {"job": job, "app": _finish(load), "job_runs": len(runs),
            "job_seconds_first": runs[0] if runs else None, "job_statuses": sorted(statuses)}


def add_old_partitions(url: str, months: int = 12, rows_per_month: int = 20_000) -> int:
    """A year of scans from 2000, in their own partitions: the retention job's work.

    Returns the retention (months) that keeps every generated row and drops only these.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        oldest = one(conn.execute("SELECT min(accessed_at) FROM qr_code_access"))[0]
        conn.execute("SELECT truelabel_meta.ensure_month_partitions('qr_code_access', "
                     "'2000-01-01', '2000-01-01'::timestamptz + %s * interval '1 month' - interval '1 day')",
                     (months,))
        conn.execute("INSERT INTO qr_code_access (qr_code, accessed_at) SELECT 'OLD-' || g %% 100, "
                     "'2000-01-01'::timestamptz + (g %% (%s * 28)) * interval '1 day' "
                     "FROM generate_series(1, %s) g", (months, months * rows_per_month))
    now = datetime.now(timezone.utc)
    months_back: int = (now.year - oldest.year) * 12 + now.month - oldest.month + 1
    return months_back


def bloat_against_truth(url: str, fractions: tuple[float, ...] = BLOAT_FRACTIONS) -> list[dict[str, Any]]:
    out = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        for fraction in fractions:
            conn.execute("DROP TABLE IF EXISTS bloat_probe")
            conn.execute("CREATE TABLE bloat_probe AS SELECT * FROM products")
            conn.execute("VACUUM ANALYZE bloat_probe")
            before = bloat_of(conn, "bloat_probe").bloat_pct
            conn.execute("SELECT setseed(0.5)")
            conn.execute("DELETE FROM bloat_probe WHERE random() < %s", (fraction,))
            conn.execute("VACUUM ANALYZE bloat_probe")
            estimate = bloat_of(conn, "bloat_probe")
            truth = one(conn.execute("SELECT free_percent + dead_tuple_percent, table_len "
                                     "FROM pgstattuple('bloat_probe')"))
            out.append({"deleted": fraction, "pgstattuple_pct": round(float(truth[0]), 1),
                        "estimate_pct": estimate.bloat_pct, "estimate_before_delete_pct": before,
                        "table_mb": round(truth[1] / 1e6, 1)})
        conn.execute("DROP TABLE IF EXISTS bloat_probe")
    return out


def replica_lag_under_load(url: str, base: Path, rate: float, seconds: float) -> dict[str, Any]:
    replica = add_replica(url, base, free_port(), name="bench_replica")
    cluster = EmbeddedCluster(base, port=replica.port)
    samples: list[float] = []
    bytes_behind: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        with psycopg.connect(url, autocommit=True) as primary, \
                psycopg.connect(replica.url, autocommit=True) as standby:
            while not stop.is_set():
                lsn = str(one(primary.execute("SELECT pg_current_wal_lsn()"))[0])
                lag = replica_lag_seconds(standby, lsn)
                behind = one(primary.execute("SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), "
                                         "replay_lsn)), 0) FROM pg_stat_replication"))[0]
                samples.append((lag or 0.0) * 1000)
                bytes_behind.append(int(behind))
                time.sleep(0.1)

    try:
        results = {}
        for label, load_rate in (("steady", rate), ("as fast as it can", 0.0)):
            samples.clear()
            bytes_behind.clear()
            stop.clear()
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            app = _finish(app_load(url, load_rate, seconds))
            stop.set()
            sampler.join(10)
            ordered = sorted(samples)
            results[label] = {"app_rate": app["rate"], "samples": len(ordered),
                              "lag_p50_ms": round(ordered[len(ordered) // 2], 1) if ordered else None,
                              "lag_p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1)
                              if ordered else None,
                              "lag_max_ms": round(ordered[-1], 1) if ordered else None,
                              "bytes_behind_max": max(bytes_behind) if bytes_behind else None}
        return {"streaming": replica.streaming, **results}
    finally:
        cluster.stop()


def run_maintenance_bench(legacy: Path, scale: float, work_dir: Path, *, rate: float = 300.0,
                          seconds: float = 10.0) -> MaintenanceBenchResult:
    base = work_dir / "maintenance"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    base.chmod(0o755)
    cluster = EmbeddedCluster(base / "primary", settings=CLUSTER_SETTINGS).start()
    try:
        url = cluster.create_database("truelabel")
        copied = run_copy(legacy, url, CopyOptions(work_dir=base / "copy", in_place=True))
        with psycopg.connect(url, autocommit=True) as conn:
            run_job(conn, job_named("refresh-views"))
            run_job(conn, job_named("vacuum-analyze"))
            conn.execute("CHECKPOINT")
        _finish(app_load(url, rate, 5.0))  # warm-up, not recorded
        result = MaintenanceBenchResult(scale, copied.totals.written, rate)
        retention = 6
        for job in PHASES:
            if job == "partitions":
                retention = add_old_partitions(url)
            result.phases.append(measure_phase(url, job, rate, seconds, retention))
        result.bloat = bloat_against_truth(url)
        result.replica = replica_lag_under_load(url, base / "replica", rate, seconds)
        return result
    finally:
        cluster.stop()

