"""The load generator drives a real `serve` process, counts what it sees, and stays bounded."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from tests.fix_twin import Pair
from truelabel_db.bench.load_bench import LoadPlan, ServiceProcess, targets, targets_from_legacy
from truelabel_db.bench.load_model import MAX_SECONDS, MAX_USERS, Arrivals, Users, check_bounds, run_arrivals, run_users


def bench_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM qr_code_access WHERE user_agent LIKE 'bench%'").fetchone()[0]


@pytest.mark.slow
def test_people_scans_and_batches_against_serve_are_counted_without_errors(shared_pair: Pair) -> None:
    loads = targets_from_legacy(shared_pair.legacy)
    service = ServiceProcess(shared_pair.url, None, cache=False, workers=1)
    before = bench_rows(shared_pair.url)
    try:
        service.wait_ready(timeout=60)
        people = asyncio.run(run_users(service.base, loads, Users(20, "read", think=0.2, ramp=1.0, seconds=2.0),
                                       token=service.token))
        scans = asyncio.run(run_arrivals(service.base, loads, Arrivals(50, "scans", 8, warmup=0.5, seconds=2.0),
                                         token=service.token))
        batches = asyncio.run(run_arrivals(service.base, loads, Arrivals(3, "batch", 2, warmup=0.5, seconds=2.0,
                                                                         batch_rows=20), token=service.token))
    finally:
        service.stop()
    read = people.to_dict()
    assert read["requests"] > 20 and read["errors"] == 0 and read["writes"] == 0
    assert read["p50_ms"] <= read["p99_ms"] <= read["p999_ms"] and read["connections"] == 20
    assert sum(r["requests"] for r in read["routes"].values()) == read["requests"]
    assert set(read["routes"]) <= {"/products/{id}", "/products", "/brands/{id}/dashboard", "/brands/{id}/analytics",
                                   "/validations/queue", "/search"}
    assert scans.requests > 20 and not scans.errors and scans.writes == scans.requests   # each acknowledged
    assert batches.requests > 0 and not batches.errors and batches.writes == 20 * batches.requests
    assert bench_rows(shared_pair.url) - before >= scans.writes + batches.writes          # and durable


@pytest.mark.parametrize(("base", "load", "says"), [
    ("http://example.com:8000", Users(10), "loopback"),
    ("http://10.0.0.8:8000", Arrivals(10), "loopback"),
    ("http://127.0.0.1:8000", Users(MAX_USERS + 1), "users"),
    ("http://127.0.0.1:8000", Arrivals(10, seconds=MAX_SECONDS), "at most"),
    ("http://127.0.0.1:8000", Arrivals(0), "rate"),
])
def test_the_generator_targets_loopback_only_and_stays_bounded(base: str, load: Users | Arrivals, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        check_bounds(base, load)


def test_a_service_that_cannot_start_says_why(tmp_path: Path) -> None:
    service = ServiceProcess(str(tmp_path / "missing.db"), None, cache=False, workers=1)
    try:
        with pytest.raises(RuntimeError, match="legacy database not found"):
            service.wait_ready(timeout=30)
    finally:
        service.stop()


def row(database: str, load: str, *, rps: float = 0.0, writes: float = 0.0, p99: float = 50.0, errors: int = 0,
        cache: bool = False, pgbouncer: bool = False) -> dict[str, object]:
    return {"database": database, "load": load, "rps": rps, "writes_per_s": writes, "p99_ms": p99,
            "errors": errors, "cache": cache, "pgbouncer": pgbouncer}


def test_targets_are_marked_met_only_when_a_run_meets_them() -> None:
    plan = LoadPlan(users=5000)
    runs = [row("sqlite", "5,000 users, read", rps=40, p99=9000, errors=300),
            row("postgresql", "5,000 users, read", rps=990, p99=120),
            row("postgresql", "scans at 2,000/s", writes=2000, p99=80),
            row("postgresql", "scans at 3,000/s", writes=2950, p99=450),
            row("postgresql", "scans at 2,000/s", writes=2000, p99=70, cache=True),
            row("sqlite", "scans at 1,000/s", writes=400, p99=4000),
            row("postgresql", "batches of 500 at 20/s", writes=10_200, p99=900)]
    marks = {t["target"]: t for t in targets(runs, plan)}
    assert marks["5,000 users: p99 < 200 ms, no error"]["met"]
    assert marks["5,000 users: p99 < 200 ms, no error"]["ratio"] == 24.8
    assert not marks["durable scans ≥ 3,000/s with p99 < 200 ms"]["met"]
    assert "2,000 writes/s" in marks["durable scans ≥ 3,000/s with p99 < 200 ms"]["postgresql"]
    assert marks["durable rows ≥ 10,000/s through POST /scans/batch"]["met"]
    assert marks["scans: capacity with the cache on at least as without"]["met"]
