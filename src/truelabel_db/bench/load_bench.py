"""``bench load``: the reference service at the plan's scale, on SQLite and PostgreSQL, in one run.

A clean legacy file of the chosen scale is copied into a private PostgreSQL cluster (its
connections, CPU and settings are then the benchmark's alone, and exhausting its
``max_connections`` harms nobody); the SQLite runs use a writable copy of the same file. For
each configuration (SQLite, PostgreSQL, PostgreSQL through PgBouncer; cache off and on) ``serve``
runs as its own process with ``workers`` uvicorn workers, and the generator (``load_model``,
in this process) applies three loads:

- ``browse``: ``users`` people reading (the read mix), thinking ``think`` seconds on average;
- ``scans``: consumer scans arriving at each of ``scan_rates`` per second in turn, over a pool of
  keep-alive connections, up to the first rate the service cannot serve within 200 ms at p99
  without error (its capacity is then the last rate it served);
- ``batch``: ``POST /scans/batch`` of ``batch_rows`` scans arriving at ``batch_rate``/s.

For each, the table has requests/s, durable writes/s (rows whose commit was acknowledged),
p50/p99/p99.9 latency from the moment each request was due, errors, and the most PostgreSQL
backends seen (sampled every 0.25 s). Then ``connection_scaling`` opens thousands of client
connections straight to PostgreSQL and through PgBouncer and counts backends. The generator
shares the machine's cores with the service and the database, so every figure is a floor.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from truelabel_db.extras import require

require("bench", "`bench load`")
require("serve", "`bench load`")   # it starts `serve`

import psycopg  # noqa: E402 (after the checks that name the missing extra)
import redis  # noqa: E402

from truelabel_db.bench.connection_scaling import connection_scaling  # noqa: E402
from truelabel_db.bench.load_model import Arrivals, Measured, Targets, Users, run_arrivals, run_users  # noqa: E402
from truelabel_db.copy import CopyOptions, run_copy  # noqa: E402
from truelabel_db.embedded import EmbeddedCluster, free_port  # noqa: E402
from truelabel_db.hotpaths import LegacyHotPaths  # noqa: E402
from truelabel_db.postgres import one  # noqa: E402
from truelabel_db.service.auth import ADMIN_TOKEN_ENV  # noqa: E402

P99_BOUND_MS = 200.0
CLUSTER_SETTINGS = {"shared_buffers": "512MB", "max_connections": "100", "max_wal_size": "2GB",
                    "checkpoint_timeout": "15min"}
CONFIGS = (("sqlite", False, False), ("sqlite", True, False), ("postgresql", False, False),
           ("postgresql", True, False), ("postgresql", False, True), ("postgresql", True, True))


@dataclass(frozen=True)
class LoadPlan:
    users: int = 5000
    think: float = 5.0
    ramp: float = 15.0
    scan_rates: tuple[float, ...] = (1000.0, 2000.0, 3000.0, 4000.0)
    batch_rate: float = 20.0
    batch_rows: int = 500
    connections: int = 256
    seconds: float = 30.0
    workers: int = 2
    pgbouncer_pool: int = 20

    def loads(self) -> list[Users | list[Arrivals] | Arrivals]:
        """The browse load, the sweep of scan rates, the batch load."""
        return [Users(self.users, "read", self.think, self.ramp, self.seconds),
                [Arrivals(rate, "scans", self.connections, 5.0, self.seconds) for rate in self.scan_rates],
                Arrivals(self.batch_rate, "batch", min(self.connections, 32), 5.0, self.seconds, self.batch_rows)]


def within_bound(row: dict[str, Any]) -> bool:
    return row["p99_ms"] is not None and row["p99_ms"] < P99_BOUND_MS and row["errors"] == 0


@dataclass
class LoadBenchResult:
    scale: float
    plan: LoadPlan
    runs: list[dict[str, Any]] = field(default_factory=list)
    scaling: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "plan": self.plan.__dict__, "p99_bound_ms": P99_BOUND_MS, "runs": self.runs,
                "connection_scaling": self.scaling, "targets": targets(self.runs, self.plan)}


def targets_from_legacy(legacy: Path) -> Targets:
    paths = LegacyHotPaths(legacy, writable=False)
    try:
        products = paths.popular_products(300)
        brands = paths.brands(200)
        listed = paths.product_list(3000)
    finally:
        paths.close()
    words = sorted({p["name"].split()[0] for p in listed[:200]})
    return Targets(products, brands, words, [p["qr_code"] for p in listed if p["qr_code"]])


class ServiceProcess:
    """``truelabel-db serve`` in a process (and session) of its own, stopped with the benchmark."""

    def __init__(self, database: str, redis_url: str | None, cache: bool, workers: int, *,
                 pgbouncer_pool: int | None = None, extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        # the generator scans thousands a second from one address: no per-address limit here
        argv = [sys.executable, "-m", "truelabel_db", "serve", "--port", str(self.port), "--scan-rate", "0",
                "--workers", str(workers), "--cache" if cache else "--no-cache", "--warm-brands", "20", *extra]
        if pgbouncer_pool is not None:
            argv += ["--pgbouncer", "--pgbouncer-pool-size", str(pgbouncer_pool)]
        # a URL may carry a password; the admin token (for the read mix, /health's details) too
        self.token = secrets.token_urlsafe(32)
        env = {**os.environ, "TRUELABEL_DATABASE": database, ADMIN_TOKEN_ENV: self.token}
        env.pop("TRUELABEL_REDIS_URL", None)
        if redis_url:
            argv += ["--redis", redis_url]
        # stderr into a file, not a pipe: a pipe nobody reads while the service runs fills up (a
        # traceback per failed request) and stops the service in the middle of a write
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=self._stderr,
                                        start_new_session=True)
        self.cache = cache

    def stderr_tail(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-300:]

    def health(self, timeout: float = 5.0) -> dict[str, Any]:
        request = urllib.request.Request(self.base + "/health", headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer: dict[str, Any] = json.load(response)
        return answer

    def settle(self, limit: float = 180.0) -> dict[str, Any] | None:
        """Wait until the service answers /health within a second again: an overloaded service
        still works through requests its clients gave up on, and the next load must not inherit
        them. None if it never does within ``limit`` seconds."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                return self.health(timeout=1.0)
            except OSError:
                time.sleep(1.0)
        return None

    def wait_ready(self, timeout: float = 1200.0) -> None:
        """Until /health answers and, with the cache on, the start-up warming has run."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited: {self.stderr_tail()}")
            try:
                health = self.health()
                if not self.cache or health["jobs"]["warmed_at"]:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError("serve did not become ready")

    def stop(self) -> None:
        """Terminate the whole session: the supervisor, its workers, and PgBouncer if any."""
        try:
            os.killpg(self.process.pid, 15)
            self.process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, 9)
            except ProcessLookupError:
                pass
            self.process.wait()
        self._stderr.close()


class BackendSampler:
    """The most client backends of one database seen while a load runs (every 0.25 s)."""

    def __init__(self, url: str | None, dbname: str) -> None:
        self.url, self.dbname = url, dbname
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "BackendSampler":
        if self.url:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        assert self.url is not None
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(0.25):
                (count,) = one(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND "
                                        "backend_type = 'client backend' AND pid <> pg_backend_pid()",
                                        (self.dbname,)))
                self.peak = max(self.peak or 0, count)


def config_name(database: str, cache: bool, pooled: bool) -> str:
    return f"{database}{' pgbouncer' if pooled else ''} cache {'on' if cache else 'off'}"


def measure_load(base: str, targets: Targets, load: Users | Arrivals, token: str | None = None) -> Measured:
    if isinstance(load, Users):
        return asyncio.run(run_users(base, targets, load, token=token))
    return asyncio.run(run_arrivals(base, targets, load, token=token))


def run_config(database: str, locator: str, cache: bool, pooled: bool, *, plan: LoadPlan, targets: Targets,
               redis_url: str, monitor_url: str | None, dbname: str,
               progress: Any = lambda _: None) -> list[dict[str, Any]]:
    if cache:
        redis.Redis.from_url(redis_url).flushdb()
    service = ServiceProcess(locator, redis_url if cache else None, cache, plan.workers,
                             pgbouncer_pool=plan.pgbouncer_pool if pooled else None)
    rows: list[dict[str, Any]] = []
    try:
        service.wait_ready()
        for step in plan.loads():
            for load in step if isinstance(step, list) else [step]:
                progress(f"{config_name(database, cache, pooled)}: {load.describe()}")
                with BackendSampler(monitor_url if database == "postgresql" else None, dbname) as sampler:
                    measured = measure_load(service.base, targets, load, service.token)
                health = service.settle()
                rows.append({"database": database, "pgbouncer": pooled, "cache": cache, **measured.to_dict(),
                             "backends": sampler.peak, "group_commit": health["group_commit"] if health else None})
                if isinstance(step, list) and not within_bound(rows[-1]):
                    break   # past this service's capacity: higher rates only queue more
    finally:
        service.stop()
    return rows


def prepare_cluster(scale: float, work_dir: Path) -> tuple[EmbeddedCluster, Path, str]:
    """A private cluster holding the scale's data, and a writable copy of the legacy file."""
    from truelabel_db.bench.copy_bench import clean_legacy

    base = clean_legacy(work_dir, scale)
    folder = (work_dir / "load").resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    legacy = folder / "legacy.db"
    shutil.copyfile(base, legacy)
    cluster = EmbeddedCluster(folder / "pg", settings=CLUSTER_SETTINGS).start()
    try:
        url = cluster.create_database("truelabel")
        run_copy(legacy, url, CopyOptions(work_dir=folder / "copy", workers=2, in_place=True))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT refresh_dashboard_stats()")
            conn.execute("VACUUM ANALYZE")
    except BaseException:
        cluster.stop()
        raise
    return cluster, legacy, url


def run_load_bench(scale: float, redis_url: str, work_dir: Path, plan: LoadPlan = LoadPlan(), *,
                   configs: tuple[tuple[str, bool, bool], ...] = CONFIGS, scaling: tuple[int, ...] = (50, 500, 2000),
                   progress: Any = lambda _: None) -> LoadBenchResult:
    progress(f"preparing scale {scale:g} in a private cluster")
    cluster, legacy, url = prepare_cluster(scale, work_dir)
    result = LoadBenchResult(scale, plan)
    try:
        targets = targets_from_legacy(legacy)
        for database, cache, pooled in configs:
            locator = url if database == "postgresql" else str(legacy)
            result.runs += run_config(database, locator, cache, pooled, plan=plan, targets=targets,
                                      redis_url=redis_url, monitor_url=url, dbname="truelabel", progress=progress)
        if scaling:
            progress("client connections straight to PostgreSQL and through PgBouncer")
            result.scaling = connection_scaling(url, scaling, pool_size=plan.pgbouncer_pool)
    finally:
        cluster.stop()
    return result


def targets(runs: list[dict[str, Any]], plan: LoadPlan) -> list[dict[str, Any]]:
    """The issue's targets, each marked met or not from this run's rows, beside SQLite's best."""
    checks = []
    for label, load, key, floor, bounded in (
            (f"{plan.users:,} users: p99 < 200 ms, no error", f"{plan.users:,} users", "rps", 0.0, True),
            ("durable scans ≥ 3,000/s with p99 < 200 ms", "scans", "writes_per_s", 3000.0, True),
            ("durable rows ≥ 10,000/s through POST /scans/batch", "batches", "writes_per_s", 10_000.0, False)):
        rows = {db: [r for r in runs if r["database"] == db and r["load"].startswith(load)]
                for db in ("postgresql", "sqlite")}
        if not rows["postgresql"]:
            continue

        def meets(row: dict[str, Any]) -> bool:
            return row[key] >= floor and (within_bound(row) or not bounded)

        passing = [r for r in rows["postgresql"] if meets(r)]
        pg = max(passing or [r for r in rows["postgresql"] if within_bound(r) or not bounded]
                 or rows["postgresql"], key=lambda r: r[key])
        served = [r for r in rows["sqlite"] if within_bound(r) or not bounded]
        lite = max(served or rows["sqlite"], key=lambda r: r[key]) if rows["sqlite"] else None
        checks.append({"target": label, "met": bool(passing), "postgresql": _brief(pg), "sqlite": _brief(lite),
                       "ratio": round(pg[key] / lite[key], 1) if lite and lite[key] else None})
    capacity = {cache: max([r["writes_per_s"] for r in runs if r["database"] == "postgresql" and not r["pgbouncer"]
                            and r["cache"] == cache and r["load"].startswith("scans") and within_bound(r)] or [0.0])
                for cache in (False, True)}
    if any(r["load"].startswith("scans") and r["database"] == "postgresql" for r in runs):
        checks.append({"target": "scans: capacity with the cache on at least as without",
                       "met": capacity[True] >= capacity[False],
                       "postgresql": f"on: {capacity[True]:,.0f}/s, off: {capacity[False]:,.0f}/s (p99 < 200 ms)",
                       "sqlite": None, "ratio": None})
    return checks


def _brief(row: dict[str, Any] | None) -> str | None:
    if row is None:
        return None
    where = f"{row['database']}{' + PgBouncer' if row['pgbouncer'] else ''}, cache {'on' if row['cache'] else 'off'}"
    return (f"{where}: {row['rps']:,.0f} req/s, {row['writes_per_s']:,.0f} writes/s, p99 {row['p99_ms']} ms, "
            f"{row['errors']} errors")
