"""Plays the app against PostgreSQL for ``bench maintenance``: its writes and hot reads, timed.

Each operation is one autocommit statement on the app's own connection, at a steady rate: QR
scans inserted (half the load), analytics events, users touched, recent scans deleted, a
product looked up by QR code and a brand's dashboard read. Every operation's latency is kept;
the process prints one JSON line with the count, failures and percentiles in milliseconds, so
that its figures are its own (run as a separate process: the GIL of the measuring process
does not distort them).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from typing import Any

import psycopg

URL_ENV = "TRUELABEL_BENCH_APP_URL"  # the database, never on the command line (ps shows it)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(run_load(os.environ[URL_ENV], args.rate, args.seconds, args.seed)))


def run_load(url: str, rate: float, seconds: float, seed: int = 1) -> dict[str, float]:
    rng = random.Random(seed)
    with psycopg.connect(url, autocommit=True, application_name="truelabel-bench app") as conn:
        codes = [r[0] for r in conn.execute("SELECT qr_code FROM products WHERE qr_code IS NOT NULL LIMIT 2000")]
        users = [r[0] for r in conn.execute("SELECT id FROM users LIMIT 2000")]
        brands = [r[0] for r in conn.execute("SELECT id FROM users WHERE role = 'BRAND' LIMIT 500")] or users
        recent: list[tuple[Any, ...]] = []
        latencies: list[float] = []
        failed = 0
        started = time.perf_counter()
        while (now := time.perf_counter() - started) < seconds:
            if rate and len(latencies) + failed >= now * rate:
                time.sleep(min(0.002, (len(latencies) + failed) / rate - now))
                continue
            t0 = time.perf_counter()
            try:
                _one(conn, rng, codes, users, brands, recent)
                latencies.append((time.perf_counter() - t0) * 1000)
            except psycopg.Error:
                failed += 1
        elapsed = time.perf_counter() - started
    return summarize(latencies, failed, elapsed)


def summarize(latencies: list[float], failed: int, elapsed: float) -> dict[str, float]:
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2) if ordered else 0.0

    return {"ops": len(ordered), "failed": failed, "seconds": round(elapsed, 2),
            "rate": round(len(ordered) / elapsed, 1) if elapsed else 0.0,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": round(ordered[-1], 2) if ordered else 0.0}


def _one(conn: psycopg.Connection, rng: random.Random, codes: list[str], users: list[object],
         brands: list[object], recent: list[tuple[Any, ...]]) -> None:
    pick = rng.random()
    if pick < 0.45 or not recent:
        row = conn.execute("INSERT INTO qr_code_access (qr_code, ip_address, user_agent, location, accessed_at) "
                           "VALUES (%s, '200.1.2.3', 'Mozilla/5.0', '{\"city\": \"Recife\"}', now()) "
                           "RETURNING id, accessed_at", (rng.choice(codes),)).fetchone()
        if row is not None:
            recent.append(row)
    elif pick < 0.55:
        conn.execute("INSERT INTO analytics_events (event_type, entity_type, entity_id, user_id, data) "
                     "VALUES ('qr_scan', 'product', gen_random_uuid(), %s, '{\"origem\": \"app\"}')",
                     (rng.choice(users),))
    elif pick < 0.65:
        conn.execute("UPDATE users SET updated_at = now() WHERE id = %s", (rng.choice(users),))
    elif pick < 0.70:
        scan_id, at = recent.pop()
        conn.execute("DELETE FROM qr_code_access WHERE id = %s AND accessed_at = %s", (scan_id, at))
    elif pick < 0.85:
        conn.execute("SELECT id, name, brand, status FROM products WHERE qr_code = %s",
                     (rng.choice(codes),)).fetchall()
    else:
        conn.execute("SELECT * FROM brand_dashboard_stats WHERE user_id = %s", (rng.choice(brands),)).fetchall()


if __name__ == "__main__":
    main()
