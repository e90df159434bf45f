"""Plays the app for ``bench sync``: plain sqlite3 on its own connection, autocommit writes.

A mix of inserts, updates and deletes across tables at a steady rate (``--rate``) or as fast
as it can (``--rate 0``), for ``--seconds``. Prints one JSON line: writes, failures, rate.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import time
import uuid


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(write(args.db, args.rate, args.seconds, args.seed)))


def write(db: str, rate: float, seconds: float, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    conn = sqlite3.connect(db, timeout=5, isolation_level=None)
    users = [r[0] for r in conn.execute('SELECT id FROM users LIMIT 500')]
    codes = [r[0] for r in conn.execute('SELECT "qrCode" FROM products WHERE "qrCode" IS NOT NULL LIMIT 500')]
    recent: list[str] = []
    writes = failed = 0
    started = time.perf_counter()
    while (now := time.perf_counter() - started) < seconds:
        if rate and writes >= now * rate:
            time.sleep(min(0.002, writes / rate - now))
            continue
        try:
            _one(conn, rng, users, codes, recent)
            writes += 1
        except sqlite3.Error:
            failed += 1
    elapsed = time.perf_counter() - started
    conn.close()
    return {"writes": writes, "failed": failed, "seconds": round(elapsed, 3), "rate": round(writes / elapsed, 1)}


def _one(conn: sqlite3.Connection, rng: random.Random, users: list[str], codes: list[str],
         recent: list[str]) -> None:
    now_ms = int(time.time() * 1000)
    pick = rng.random()
    if pick < 0.5 or not recent:
        key = str(uuid.uuid4())
        conn.execute('INSERT INTO qr_code_accesses VALUES (?, ?, ?, ?, ?, ?)',
                     (key, rng.choice(codes), "200.1.2.3", "Mozilla/5.0", '{"city": "Recife"}', now_ms))
        recent.append(key)
    elif pick < 0.7:
        conn.execute('INSERT INTO analytics_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                     (str(uuid.uuid4()), "qr_scan", "product", str(uuid.uuid4()), rng.choice(users),
                      str(uuid.uuid4()), '{"origem": "app"}', "10.0.0.1", "Mozilla/5.0", now_ms))
    elif pick < 0.9:
        conn.execute('UPDATE users SET "updatedAt" = ? WHERE id = ?', (now_ms, rng.choice(users)))
    else:
        conn.execute("DELETE FROM qr_code_accesses WHERE id = ?", (recent.pop(),))


if __name__ == "__main__":
    main()
