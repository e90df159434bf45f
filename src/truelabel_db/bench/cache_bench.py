"""``bench cache``: how stale the cache can be, whoever writes, and what the truth costs.

Three measurements, each beside its reference in the same run:

- **Staleness per writer.** A product is read through the service (so it is cached), then
  renamed by a writer: plain SQL (an operator), the follower (the app wrote SQLite), or the
  service itself (a scan, whose brand's analytics the ``scan:create`` rule refreshes once per
  5 s window). From the commit, the service is read every millisecond until the answer is
  fresh: the staleness is that time. The reference is the same service without database
  events, read once ``reference_wait`` seconds after an SQL change: still stale or not.
- **Hit ratio under a read mix** (product pages skewed to the popular, the list, the queue,
  dashboards, analytics) while plain SQL renames products at ``write_rate``, with and without
  database events: what invalidating on every writer costs in hits.
- **The triggers' cost on the write path**: the same single-row updates, validation inserts and
  scan group commits timed with the triggers attached and detached, alternately.
"""

from __future__ import annotations

import random
import secrets
import shutil
import sqlite3
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db.bench.copy_bench import clean_legacy, fresh_database
from truelabel_db.capture import install_capture
from truelabel_db.catalog import cache_changes
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.follow import Follower
from truelabel_db.postgres import one
from truelabel_db.service import ServiceConfig, create_app
from truelabel_db.service.auth import admin_token_digest

QUIET: dict[str, Any] = dict(warm_on_start=False, refresh_interval=0, warm_interval=0)


@dataclass
class Distribution:
    samples_ms: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        ordered = sorted(self.samples_ms)
        if not ordered:
            return {"n": 0}

        def at(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 1)

        return {"n": len(ordered), "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": round(ordered[-1], 1)}


@dataclass
class CacheBenchResult:
    scale: float
    staleness: dict[str, dict[str, Any]] = field(default_factory=dict)
    reference_stale: dict[str, Any] = field(default_factory=dict)
    hit_ratio: dict[str, float | None] = field(default_factory=dict)
    write_cost: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def _service(url: str, redis_url: str, db_events: bool = True) -> Iterator[Any]:
    """The service in process, and a client holding an admin token of this run's own (the brand
    routes, the queue and /health's cache figures need a scope)."""
    from fastapi.testclient import TestClient

    token = secrets.token_urlsafe(32)
    config = ServiceConfig(database=url, redis_url=redis_url, db_events=db_events,
                           admin_token_sha256=admin_token_digest(token), **QUIET)
    with TestClient(create_app(config), headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def _flush(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()


def _wait_fresh(read: Callable[[], bool], since: float, limit: float = 10.0) -> float:
    """Milliseconds from ``since`` (a commit, time.time()) until ``read()`` is fresh."""
    while not read():
        if time.time() - since > limit:
            return limit * 1000
        time.sleep(0.001)
    return (time.time() - since) * 1000


def _products(client: Any, n: int) -> list[dict[str, Any]]:
    return [p for p in client.get(f"/products?limit={n}").json() if p["qr_code"]]


def _name(client: Any, product_id: str) -> str:
    return str(client.get(f"/products/{product_id}").json()["name"])


def staleness_sql(client: Any, url: str, products: list[dict[str, Any]], samples: int) -> Distribution:
    out = Distribution()
    with psycopg.connect(url, autocommit=True) as conn:
        for n in range(samples):
            product = products[n % len(products)]
            _name(client, product["id"])  # cached now
            token = f"SQL {uuid.uuid4().hex[:8]}"
            conn.execute("UPDATE products SET name = %s WHERE id = %s", (token, product["id"]))
            committed = time.time()
            out.samples_ms.append(_wait_fresh(lambda: _name(client, product["id"]) == token, committed))
    return out


def _logged_at(url: str, product_id: str) -> float:
    """When the trigger logged the follower's change: just before its commit (conservative)."""
    with psycopg.connect(url, autocommit=True) as conn:
        since = "1:1:"
        changes = [c for c in cache_changes.sweep(conn, since).changes
                   if c.table == "products" and c.key == product_id]
    return max(c.at for c in changes).timestamp()


def staleness_follower(client: Any, url: str, legacy: Path, products: list[dict[str, Any]],
                       samples: int) -> Distribution:
    out = Distribution()
    follower = Follower(legacy, url)
    try:
        for n in range(samples):
            product = products[n % len(products)]
            _name(client, product["id"])
            token = f"App {uuid.uuid4().hex[:8]}"
            with sqlite3.connect(legacy) as app:
                app.execute('UPDATE products SET name = ?, "updatedAt" = "updatedAt" + 1 WHERE id = ?',
                            (token, product["id"]))
            follower.run(until_caught_up=True)
            committed = _logged_at(url, product["id"])
            out.samples_ms.append(_wait_fresh(lambda: _name(client, product["id"]) == token, committed))
    finally:
        follower.close()
    return out


def staleness_scans(client: Any, products: list[dict[str, Any]], samples: int) -> Distribution:
    out = Distribution()
    for n in range(samples):
        product = products[n % len(products)]
        path = f"/brands/{product['user_id']}/analytics?days=30"
        before = client.get(path).json()["total_scans"]
        assert client.post("/scans", json={"qr_code": product["qr_code"]}).json()["recorded"]
        committed = time.time()
        out.samples_ms.append(_wait_fresh(lambda: client.get(path).json()["total_scans"] > before, committed))
    return out


def reference_stale(url: str, redis_url: str, products: list[dict[str, Any]], samples: int,
                    wait: float) -> dict[str, Any]:
    """Today's cache (no database events): is a read ``wait`` s after an SQL rename still stale?"""
    _flush(redis_url)
    stale = 0
    with _service(url, redis_url, db_events=False) as client, psycopg.connect(url, autocommit=True) as conn:
        for product in products[:samples]:
            _name(client, product["id"])
            token = f"Ref {uuid.uuid4().hex[:8]}"
            conn.execute("UPDATE products SET name = %s WHERE id = %s", (token, product["id"]))
            time.sleep(wait)
            stale += _name(client, product["id"]) != token
    return {"samples": samples, "stale_after_s": wait, "stale": stale}


# -- the read mix -----------------------------------------------------------------------------
def _read_mix(client: Any, products: list[dict[str, Any]], brands: list[str], seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    weights = [1 / (i + 1) for i in range(len(products))]  # Zipf-like: a few products are most read
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pick = rng.random()
        if pick < 0.6:
            path = f"/products/{rng.choices(products, weights)[0]['id']}"
        elif pick < 0.7:
            path = "/products?limit=100"
        elif pick < 0.8:
            path = "/validations/queue?limit=100"
        elif pick < 0.9:
            path = f"/brands/{rng.choice(brands)}/dashboard"
        else:
            path = f"/brands/{rng.choice(brands)}/analytics?days=30"
        status = client.get(path).status_code
        if status >= 400 and status != 404:  # a refused read is no cache figure: stop, say why
            raise RuntimeError(f"the read mix got HTTP {status} for {path}")


def _writer(url: str, products: list[dict[str, Any]], rate: float, stop: threading.Event) -> None:
    rng = random.Random(3)
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.wait(1 / rate):
            conn.execute("UPDATE products SET name = %s WHERE id = %s",
                          (f"Mix {uuid.uuid4().hex[:6]}", rng.choice(products)["id"]))


def hit_ratio(url: str, redis_url: str, db_events: bool, seconds: float, write_rate: float,
              products: int) -> float | None:
    _flush(redis_url)
    with _service(url, redis_url, db_events=db_events) as client:
        hot = _products(client, products)
        brands = sorted({p["user_id"] for p in hot})
        stop = threading.Event()
        writer = threading.Thread(target=_writer, args=(url, hot, write_rate, stop), daemon=True)
        writer.start()
        try:
            _read_mix(client, hot, brands, seconds, seed=1)
        finally:
            stop.set()
            writer.join()
        ratio = client.get("/health").json()["cache"]["hit_ratio"]["overall"]
    return None if ratio is None else round(float(ratio), 4)


# -- the triggers' cost on writes ------------------------------------------------------------
def _timed(conn: psycopg.Connection[Any], statement: sql.SQL | sql.Composed, params: Callable[[int], Any],
           n: int) -> float:
    """Microseconds per statement (each its own transaction, as the app's writes are)."""
    started = time.perf_counter()
    for i in range(n):
        conn.execute(statement, params(i))
    return (time.perf_counter() - started) / n * 1e6


def write_cost(url: str, rounds: int, n: int) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM products ORDER BY id LIMIT 500")]
        user = one(conn.execute("SELECT id FROM users LIMIT 1"))[0]
        codes = [r[0] for r in conn.execute("SELECT qr_code FROM products WHERE qr_code IS NOT NULL LIMIT 200")]
        now = datetime.now(timezone.utc)
        cases: dict[str, tuple[sql.SQL | sql.Composed, Callable[[int], Any]]] = {
            "product update (1 row)": (sql.SQL("UPDATE products SET name = %s WHERE id = %s"),
                                       lambda i: (f"W {i}", ids[i % len(ids)])),
            "validation insert (1 row)": (sql.SQL("INSERT INTO validations (product_id, user_id) VALUES (%s, %s)"),
                                          lambda i: (ids[i % len(ids)], user)),
            "scan group commit (100 rows)": (sql.SQL(
                "INSERT INTO qr_code_access (qr_code, accessed_at) SELECT unnest(%s::text[]), %s"),
                lambda i: ([codes[(i + k) % len(codes)] for k in range(100)], now)),
        }
        timings: dict[str, dict[str, list[float]]] = {c: {"with": [], "without": []} for c in cases}
        for r in range(rounds):
            for state in (("with", "without") if r % 2 == 0 else ("without", "with")):
                if state == "with":
                    cache_changes.install_triggers(conn)
                else:
                    cache_changes.remove_triggers(conn)
                for case, (statement, params) in cases.items():
                    timings[case][state].append(_timed(conn, statement, params, n))
        cache_changes.install_triggers(conn)
    rows = []
    for case, by in timings.items():
        with_us, without_us = statistics.median(by["with"]), statistics.median(by["without"])
        rows.append({"write": case, "with_triggers_us": round(with_us, 1), "without_us": round(without_us, 1),
                     "overhead": round(with_us / without_us - 1, 3)})
    return rows


# -- the whole run ---------------------------------------------------------------------------
def prepare(scale: float, admin_url: str, work_dir: Path) -> tuple[Path, str]:
    """A private legacy file under change capture, and its copy (triggers attached after)."""
    folder = work_dir / "cache"
    folder.mkdir(parents=True, exist_ok=True)
    legacy = folder / "legacy.db"
    shutil.copyfile(clean_legacy(work_dir, scale), legacy)
    install_capture(legacy)
    url = fresh_database(admin_url, "truelabel_bench_cache")
    run_copy(legacy, url, CopyOptions(work_dir=folder / "copy", workers=2, resume=False))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT refresh_dashboard_stats()")
        conn.execute("VACUUM ANALYZE")
    return legacy, url


def run_cache_bench(scale: float, admin_url: str, redis_url: str, work_dir: Path, *, samples: int = 200,
                    mix_seconds: float = 30.0, write_rate: float = 5.0, reference_wait: float = 2.0,
                    rounds: int = 4, writes: int = 300,
                    progress: Callable[[str], None] = lambda _: None) -> CacheBenchResult:
    legacy, url = prepare(scale, admin_url, work_dir)
    result = CacheBenchResult(scale)
    _flush(redis_url)
    with _service(url, redis_url) as client:
        products = _products(client, 200)
        progress("staleness: plain SQL")
        result.staleness["direct SQL"] = staleness_sql(client, url, products, samples).to_dict()
        progress("staleness: the follower")
        result.staleness["the follower"] = staleness_follower(client, url, legacy, products,
                                                               max(10, samples // 4)).to_dict()
        progress("staleness: scans through the service (analytics)")
        result.staleness["the service (scan → analytics, 5 s rule window)"] = staleness_scans(
            client, products, max(5, samples // 20)).to_dict()
    progress("reference: the cache without database events")
    result.reference_stale = reference_stale(url, redis_url, products, 5, reference_wait)
    for label, events in (("with database events", True), ("without (today's cache)", False)):
        progress(f"hit ratio under the read mix, {label}")
        result.hit_ratio[label] = hit_ratio(url, redis_url, events, mix_seconds, write_rate, 200)
    progress("the triggers' cost on writes")
    result.write_cost = write_cost(url, rounds, writes)
    _flush(redis_url)
    return result
