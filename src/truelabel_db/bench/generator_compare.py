"""``bench generators``: which load generator measures better on these 2 cores.

Locust's ``FastHttpUser`` (gevent, one greenlet per user) and our aiohttp generator
(``load_model``, one asyncio task per user) drive the same running service with the same user
model: ``users`` people arriving over ``ramp`` seconds, thinking an exponential ``think``
seconds between requests of the read mix, measured for ``seconds`` after the ramp. Each runs in
a process of its own, so its CPU time (from ``os.wait4``) is its own. Compared: requests/s
achieved against the ~users/think offered, the generator's CPU per 1,000 requests (CPU the
service under test does not get), and the latency each reports. Locust times a request from
when it sent it and reports whole milliseconds; ours from when it was due, so a generator that
falls behind shows it in its own figures (``late_p99_ms``).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from truelabel_db.bench.load_model import Targets  # requires the bench extra, naming it
from truelabel_db.errors import ConfigError

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def _run(argv: list[str], env: dict[str, str]) -> tuple[str, float, float]:
    """stdout, wall seconds and CPU seconds (user + system) of one child process."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{Path(argv[2] if len(argv) > 2 else argv[0]).name} exited {process.returncode}")
    return text, time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def _env(token: str | None, **more: str) -> dict[str, str]:
    """Ours, plus the API key the read mix sends (through the environment: never on a command line)."""
    return {**os.environ, **more, **({"TRUELABEL_LOAD_TOKEN": token} if token else {})}


def run_ours(base: str, targets_file: Path, users: int, think: float, ramp: float, seconds: float,
             token: str | None = None) -> dict[str, Any]:
    out, wall, cpu = _run([sys.executable, "-m", "truelabel_db.bench.load_model", "--base", base, "--targets",
                           str(targets_file), "--users", str(users), "--think", str(think), "--ramp", str(ramp),
                           "--seconds", str(seconds)], _env(token))
    doc = json.loads(out.strip().splitlines()[-1])
    total = doc["requests"] * (seconds + ramp) / seconds   # CPU covers the ramp's requests too
    return {"generator": "aiohttp (ours)", "rps": doc["rps"], "errors": doc["errors"], "p50_ms": doc["p50_ms"],
            "p99_ms": doc["p99_ms"], "p999_ms": doc["p999_ms"], "late_p99_ms": doc["late_p99_ms"],
            "cpu_s": round(cpu, 1), "cpu_ms_per_request": round(1000 * cpu / max(total, 1), 3),
            "wall_s": round(wall, 1)}


def run_locust(base: str, targets_file: Path, users: int, think: float, ramp: float, seconds: float,
               token: str | None = None) -> dict[str, Any]:
    locust = shutil.which("locust", path=str(Path(sys.executable).parent)) or shutil.which("locust")
    if locust is None:
        raise ConfigError("Locust is not installed: pip install -e '.[loadtest]'")
    with tempfile.TemporaryDirectory() as folder:
        prefix = Path(folder) / "run"
        env = _env(token, TRUELABEL_LOAD_TARGETS=str(targets_file), TRUELABEL_LOAD_THINK=str(think))
        _, wall, cpu = _run([locust, "-f", str(LOCUSTFILE), "--headless", "--only-summary", "--reset-stats",
                             "-u", str(users), "-r", f"{users / ramp:g}", "-t", f"{ramp + seconds:g}s",
                             "--host", base, "--csv", str(prefix), "--loglevel", "ERROR"], env)
        with open(f"{prefix}_stats.csv", newline="") as fh:
            total = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    count = int(total["Request Count"])
    return {"generator": "Locust FastHttpUser", "rps": round(float(total["Requests/s"]), 1),
            "errors": int(total["Failure Count"]), "p50_ms": float(total["50%"]), "p99_ms": float(total["99%"]),
            "p999_ms": float(total["99.9%"]), "late_p99_ms": None, "cpu_s": round(cpu, 1),
            "cpu_ms_per_request": round(1000 * cpu / max(count * (seconds + ramp) / seconds, 1), 3),
            "wall_s": round(wall, 1)}


def run_generator_bench(scale: float, redis_url: str, work_dir: Path, *, users: int = 5000, think: float = 5.0,
                        ramp: float = 15.0, seconds: float = 30.0) -> dict[str, Any]:
    """Both generators against ``serve`` (PostgreSQL, cache on, 2 workers) on a private cluster."""
    import redis

    from truelabel_db.bench.load_bench import ServiceProcess, prepare_cluster, targets_from_legacy

    cluster, legacy, url = prepare_cluster(scale, work_dir)
    try:
        redis.Redis.from_url(redis_url).flushdb()
        service = ServiceProcess(url, redis_url, True, 2)
        try:
            service.wait_ready()
            rows = compare_generators(service.base, targets_from_legacy(legacy), users=users, think=think,
                                      ramp=ramp, seconds=seconds, token=service.token)
        finally:
            service.stop()
    finally:
        cluster.stop()
    return {"scale": scale, "users": users, "think": think, "offered_rps": round(users / think, 1), "runs": rows}


def compare_generators(base: str, targets: Targets, *, users: int = 5000, think: float = 5.0, ramp: float = 15.0,
                       seconds: float = 30.0, token: str | None = None) -> list[dict[str, Any]]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(asdict(targets), fh)
    try:
        path = Path(fh.name)
        return [run_ours(base, path, users, think, ramp, seconds, token),
                run_locust(base, path, users, think, ramp, seconds, token),
                run_ours(base, path, users, think, ramp, seconds, token)]   # ours twice: before and after, for drift
    finally:
        Path(fh.name).unlink(missing_ok=True)
