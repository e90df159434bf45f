"""``bench load``: a bounded load generator against ``serve``, on SQLite and on PostgreSQL.

For each database, with the cache off and on, the service is started as its own process
(uvicorn, ``workers`` processes) on loopback, and a closed-loop generator (asyncio + aiohttp,
``concurrency`` clients, each sending its next request when the last one answered) drives two
mixes for ``duration`` seconds:

- ``read``: product pages (popular products, skewed), brand dashboards and scan analytics, the
  validation queue, search, and the 100-product list;
- ``scan``: consumer scans (the write path: lookup by QR code + INSERT), with some product pages.

A sweep over growing concurrency then finds, per configuration and mix, the highest
concurrency whose p99 stays under 200 ms with no errors, and the requests (for the scan mix:
writes) per second there. The generator shares the machine's cores with the service: the
figures are a floor of what the service does with the cores to itself.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from truelabel_db.extras import require

require("bench", "`bench load`")
require("serve", "`bench load`")   # it starts `serve`

import aiohttp  # noqa: E402 (after the checks that name the missing extra)
import redis  # noqa: E402

from truelabel_db.bench.queries_bench import prepare  # noqa: E402
from truelabel_db.embedded import free_port  # noqa: E402
from truelabel_db.hotpaths import LegacyHotPaths  # noqa: E402

P99_BOUND_MS = 200.0
SWEEP = (10, 25, 50, 100, 200, 400)


@dataclass
class LoadRun:
    database: str
    cache: bool
    mix: str
    concurrency: int
    seconds: float
    requests: int
    errors: int
    writes: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def write_tps(self) -> float:
        return self.writes / self.seconds

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rps": round(self.rps, 1), "write_tps": round(self.write_tps, 1)}


@dataclass(frozen=True)
class Targets:
    products: list[str]
    brands: list[str]
    words: list[str]
    codes: list[str]

    @classmethod
    def from_legacy(cls, legacy: Path) -> "Targets":
        paths = LegacyHotPaths(legacy, writable=False)
        try:
            products = paths.popular_products(300)
            brands = paths.brands(200)
            names = [p["name"] for p in paths.product_list(200)]
            codes = [p["qr_code"] for p in paths.product_list(3000) if p["qr_code"]]
        finally:
            paths.close()
        return cls(products, brands, sorted({n.split()[0] for n in names}), codes)


def _skewed(rng: random.Random, items: list[str]) -> str:
    """Popular first: index by a Pareto draw, as real traffic concentrates on a few items."""
    return items[min(len(items) - 1, int(rng.paretovariate(1.2)) - 1)]


def _request(mix: str, t: Targets, rng: random.Random) -> tuple[str, str, dict[str, Any] | None]:
    roll = rng.random()
    if mix == "scan":
        if roll < 0.9:
            return "POST", "/scans", {"qr_code": _skewed(rng, t.codes), "user_agent": "bench"}
        return "GET", f"/products/{_skewed(rng, t.products)}", None
    if roll < 0.40:
        return "GET", f"/products/{_skewed(rng, t.products)}", None
    if roll < 0.55:
        return "GET", f"/brands/{_skewed(rng, t.brands)}/dashboard", None
    if roll < 0.70:
        return "GET", f"/brands/{_skewed(rng, t.brands)}/analytics", None
    if roll < 0.80:
        return "GET", "/validations/queue?limit=100", None
    if roll < 0.90:
        return "GET", f"/search?q={rng.choice(t.words)}", None
    return "GET", "/products?limit=100", None


async def _client(session: aiohttp.ClientSession, base: str, mix: str, targets: Targets, seed: int,
                  deadline: float, latencies: list[float], counts: dict[str, int]) -> None:
    rng = random.Random(seed)
    while time.perf_counter() < deadline:
        method, path, body = _request(mix, targets, rng)
        started = time.perf_counter()
        try:
            async with session.request(method, base + path, json=body) as response:
                await response.read()
                ok = response.status < 400
        except (aiohttp.ClientError, asyncio.TimeoutError):
            ok = False
        latencies.append((time.perf_counter() - started) * 1000)
        counts["errors"] += not ok
        counts["writes"] += ok and method == "POST"


async def _drive(base: str, mix: str, targets: Targets, concurrency: int, seconds: float) -> tuple[list[float], dict[str, int], float]:
    latencies: list[float] = []
    counts = {"errors": 0, "writes": 0}
    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(_client(session, base, mix, targets, n, deadline, latencies, counts)
                               for n in range(concurrency)))
        return latencies, counts, time.perf_counter() - started


def measure(base: str, database: str, cache: bool, mix: str, targets: Targets, concurrency: int,
            seconds: float) -> LoadRun:
    latencies, counts, elapsed = asyncio.run(_drive(base, mix, targets, concurrency, seconds))
    ordered = sorted(latencies) or [0.0]
    return LoadRun(database, cache, mix, concurrency, round(elapsed, 2), len(latencies), counts["errors"],
                   counts["writes"], round(statistics.median(ordered), 2),
                   round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2))


class ServiceProcess:
    """``truelabel-db serve`` in a process of its own, stopped with the benchmark."""

    def __init__(self, database: str, redis_url: str | None, cache: bool, workers: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "truelabel_db", "serve", "--port", str(self.port),
                "--workers", str(workers), "--cache" if cache else "--no-cache", "--warm-brands", "20"]
        env = {**os.environ, "TRUELABEL_DATABASE": database}   # a URL may carry a password
        env.pop("TRUELABEL_REDIS_URL", None)
        if redis_url:
            argv += ["--redis", redis_url]
        self.process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.cache = cache

    def wait_ready(self, timeout: float = 1200.0) -> None:
        """Until /health answers and, with the cache on, the start-up warming has run."""
        import json
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited: {self.process.stderr.read().decode()[-300:]}")
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=2) as response:
                    health = json.load(response)
                if not self.cache or health["jobs"]["warmed_at"]:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError("serve did not become ready")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def run_load_bench(scale: float, admin_url: str, redis_url: str, work_dir: Path, *, concurrency: int = 200,
                   duration: float = 30.0, sweep_seconds: float = 5.0, workers: int = 2,
                   sweep: tuple[int, ...] = SWEEP, progress: Any = lambda _: None) -> dict[str, Any]:
    legacy, _, url = prepare(scale, admin_url, work_dir, name="load", indexed=False)
    targets = Targets.from_legacy(legacy)
    runs: list[LoadRun] = []
    sustained: list[dict[str, Any]] = []
    for database, locator in (("sqlite", str(legacy)), ("postgresql", url)):
        for cache in (False, True):
            if cache:
                redis.Redis.from_url(redis_url).flushdb()
            progress(f"starting serve on {database}, cache {'on' if cache else 'off'}")
            service = ServiceProcess(locator, redis_url if cache else None, cache, workers)
            try:
                service.wait_ready()
                for mix in ("read", "scan"):
                    progress(f"{database}, cache {'on' if cache else 'off'}, {mix} mix, {concurrency} clients")
                    runs.append(measure(service.base, database, cache, mix, targets, concurrency, duration))
                    best = None
                    for level in sweep:
                        run = measure(service.base, database, cache, mix, targets, level, sweep_seconds)
                        if run.errors or run.p99_ms >= P99_BOUND_MS:
                            break
                        best = run
                    sustained.append({"database": database, "cache": cache, "mix": mix,
                                      "concurrency": best.concurrency if best else 0,
                                      "rps": round(best.rps, 1) if best else 0.0,
                                      "write_tps": round(best.write_tps, 1) if best else 0.0,
                                      "p99_ms": best.p99_ms if best else None})
            finally:
                service.stop()
    return {"scale": scale, "workers": workers, "concurrency": concurrency, "duration": duration,
            "p99_bound_ms": P99_BOUND_MS, "runs": [r.to_dict() for r in runs], "sustained": sustained}
