"""``bench queries``: each hot path on the legacy SQLite and on the optimized PostgreSQL.

Same data, same run: a clean generated legacy file is copied into PostgreSQL, then every hot
path is timed on four contenders:

- SQLite, the app's way: Prisma's N+1 (one query per product for its relations) and
  aggregates computed in application code (the plan's "SQLite (atual)" column);
- SQLite, best SQL: set-based queries on the file as it is;
- SQLite, best SQL with the indexes ``analyze`` recommends added (on a copy of the file);
- PostgreSQL, the optimized schema.

Each path runs at least ``min_runs`` times and until its time budget is spent; the questions
rotate over the same sample of brands and words on every contender. The improvement is the
plan's: 1 - PostgreSQL's median / the app's median.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg

from truelabel_db.analyze.relations import missing_indexes
from truelabel_db.bench.copy_bench import clean_legacy, fresh_database
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.hotpaths import LegacyHotPaths, PostgresHotPaths, Scan
from truelabel_db.hotpaths.base import HotPaths
from truelabel_db.legacy.source import open_schema
from truelabel_db.sqlite_sql import quote_ident

# The plan's table (§7): SQLite today, PostgreSQL optimized, the improvement it promises.
PLAN = {"product_list": (850.0, 45.0, 0.94), "qr_analytics": (2300.0, 120.0, 0.95),
        "dashboard": (3500.0, 200.0, 0.94)}
PATHS = ("product_list", "qr_analytics", "dashboard", "validation_queue", "search", "scan")


@dataclass
class Timing:
    samples_ms: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]

    def to_dict(self) -> dict[str, Any]:
        return {"runs": len(self.samples_ms), "median_ms": round(self.median, 2), "p99_ms": round(self.p99, 2)}


@dataclass
class QueriesBenchResult:
    scale: float
    rows: dict[str, int]
    timings: dict[str, dict[str, Timing]]     # path → contender → timing
    contenders: list[str]

    def improvement(self, path: str) -> float:
        return 1 - self.timings[path]["postgresql"].median / self.timings[path]["sqlite_app"].median

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"scale": self.scale, "rows": self.rows, "paths": {}}
        for path, by in self.timings.items():
            entry: dict[str, Any] = {name: t.to_dict() for name, t in by.items()}
            entry["improvement_vs_app"] = round(self.improvement(path), 4)
            if path in PLAN:
                sqlite_ms, pg_ms, target = PLAN[path]
                entry["plan"] = {"sqlite_ms": sqlite_ms, "postgresql_ms": pg_ms, "improvement": target,
                                 "met": self.improvement(path) >= target}
            doc["paths"][path] = entry
        return doc


class Questions:
    """The same rotating questions for every contender."""

    def __init__(self, legacy: Path, seed: int = 11) -> None:
        rng = random.Random(seed)
        with sqlite3.connect(legacy) as conn:
            brands = [r[0] for r in conn.execute(
                'SELECT "userId" FROM products GROUP BY "userId" ORDER BY count(*) DESC, "userId"')]
            self.brands = brands[:10] + rng.sample(brands, min(20, len(brands)))
            names = [r[0] for r in conn.execute("SELECT name FROM products ORDER BY random() LIMIT 200")]
            codes = [r[0] for r in conn.execute('SELECT "qrCode" FROM products WHERE "qrCode" IS NOT NULL '
                                                "ORDER BY random() LIMIT 500")]
            (newest,) = conn.execute('SELECT max("accessedAt") FROM qr_code_accesses').fetchone()
        self.words = [n.split()[0] for n in names[:20]] + [" ".join(n.split()[:2]) for n in names[20:40]]
        self.codes = codes
        self.now = datetime.fromtimestamp(newest / 1000, timezone.utc)

    def calls(self, paths: HotPaths) -> dict[str, Callable[[int], object]]:
        return {
            "product_list": lambda i: paths.product_list(1000),
            "qr_analytics": lambda i: paths.qr_analytics(self.brands[i % len(self.brands)], 30, self.now),
            "dashboard": lambda i: paths.brand_dashboard(self.brands[i % len(self.brands)]),
            "validation_queue": lambda i: paths.validation_queue(100),
            "search": lambda i: paths.search(self.words[i % len(self.words)], 20),
            "scan": lambda i: paths.scan(Scan(self.codes[i % len(self.codes)], "200.100.1.1", "bench", self.now)),
        }


def timed(call: Callable[[int], object], min_runs: int, max_runs: int, budget: float) -> Timing:
    timing = Timing()
    started = time.perf_counter()
    for i in range(max_runs):
        if i >= min_runs and time.perf_counter() - started > budget:
            break
        t0 = time.perf_counter()
        call(i)
        timing.samples_ms.append((time.perf_counter() - t0) * 1000)
    return timing


def indexed_copy(legacy: Path, destination: Path) -> Path:
    """The legacy file with every index ``analyze`` says it lacks (what a careful team would add)."""
    shutil.copyfile(legacy, destination)
    with sqlite3.connect(destination) as conn:
        for n, missing in enumerate(missing_indexes(open_schema(destination))):
            cols = ", ".join(quote_ident(c) for c in missing.columns)
            conn.execute(f"CREATE INDEX IF NOT EXISTS {quote_ident(f'bench_idx_{n}')} "
                         f"ON {quote_ident(missing.table)} ({cols})")
        conn.execute('CREATE INDEX IF NOT EXISTS bench_idx_created ON products ("createdAt")')
        conn.execute('CREATE INDEX IF NOT EXISTS bench_idx_scans ON qr_code_accesses ("qrCode", "accessedAt")')
        conn.execute("ANALYZE")
    return destination


def prepare(scale: float, admin_url: str, work_dir: Path, name: str = "queries",
            indexed: bool = True) -> tuple[Path, Path | None, str]:
    """A private copy of the clean legacy file (scans write into it) and its PostgreSQL twin."""
    base = clean_legacy(work_dir, scale)
    folder = work_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    legacy = folder / "legacy.db"
    shutil.copyfile(base, legacy)
    with_indexes = indexed_copy(base, folder / "legacy-indexed.db") if indexed else None
    url = fresh_database(admin_url, f"truelabel_bench_{name}")
    run_copy(legacy, url, CopyOptions(work_dir=folder / "copy", workers=2, resume=False))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT refresh_dashboard_stats()")
        conn.execute("VACUUM ANALYZE")
    return legacy, with_indexes, url


def run_queries_bench(scale: float, admin_url: str, work_dir: Path, *, min_runs: int = 3,
                      max_runs: int = 500, budget: float = 8.0,
                      progress: Callable[[str], None] = lambda _: None) -> QueriesBenchResult:
    legacy, indexed, url = prepare(scale, admin_url, work_dir)
    assert indexed is not None
    questions = Questions(legacy)
    contenders: dict[str, HotPaths] = {
        "sqlite_app": LegacyHotPaths(legacy, mode="app"),
        "sqlite_best": LegacyHotPaths(legacy, mode="best"),
        "sqlite_indexed": LegacyHotPaths(indexed, mode="best"),
        "postgresql": PostgresHotPaths(url, max_size=2),
    }
    with sqlite3.connect(legacy) as conn:
        rows = {t: conn.execute(f"SELECT count(*) FROM {quote_ident(t)}").fetchone()[0]
                for t in ("products", "validations", "qr_code_accesses", "users")}
    timings: dict[str, dict[str, Timing]] = {p: {} for p in PATHS}
    try:
        for name, paths in contenders.items():
            calls = questions.calls(paths)
            for path in PATHS:
                progress(f"{path} on {name}")
                calls[path](0)  # warm the page cache and the plan cache: steady state is measured
                timings[path][name] = timed(calls[path], min_runs, max_runs, budget)
    finally:
        for paths in contenders.values():
            paths.close()
    return QueriesBenchResult(scale, rows, timings, list(contenders))
