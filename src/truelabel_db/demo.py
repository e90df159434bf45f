"""The guided tour: a generated legacy database, analyzed and migrated end to end.

With no target configured the demo starts a private PostgreSQL cluster and stops and removes it
afterwards, so one command shows the whole migration on a machine that has nothing set up. The
cluster lives in a scratch folder of the system's temporary folder, not under the working
directory: the server's user (``truelabel-pg`` when we are root) must be able to enter it, and a
clone under a private home (``/root``, mode 0700) is out of its reach. See
:mod:`truelabel_db.embedded`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql
from rich.console import Console

from truelabel_db.copy import CopyOptions, CopyResult, run_copy
from truelabel_db.copy.summary import render as render_copy
from truelabel_db.hotpaths import HotPaths, LegacyHotPaths, PostgresHotPaths
from truelabel_db.postgres import connect, one
from truelabel_db.progress import RichProgress
from truelabel_db.quarantine import list_records

DEMO_DATABASE = "truelabel_demo"


def run_demo(*, work_dir: Path, scale: float, dirty: bool, target_url: str | None,
             workers: int, console: Console) -> CopyResult:
    from truelabel_db.analyze import analyze
    from truelabel_db.legacy.generator import generate

    work_dir = work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    legacy = work_dir / "legacy.db"
    console.rule("1. a legacy True Label database")
    report = generate(legacy, scale, dirty=dirty, overwrite=True)
    console.print(f"generated {legacy} with {sum(report.rows.values()):,} rows"
                  + (f" and {len(report.dirt)} dirty values" if dirty else ""))
    console.rule("2. what is wrong with it")
    findings = analyze(legacy).to_dict().get("findings", [])
    for finding in findings[:12]:
        console.print(f"  [{finding.get('severity', '')}] {finding.get('message', finding)}")
    console.rule("3. migrate")
    options = CopyOptions(workers=workers, work_dir=work_dir / "copy", truncate=True)
    if target_url:
        return _migrate(legacy, target_url, options, console)
    from truelabel_db.embedded import EmbeddedCluster, scratch_cluster_dir

    with scratch_cluster_dir("demo-") as folder, EmbeddedCluster(folder / "pg") as cluster:
        console.print(f"started a private PostgreSQL cluster on {cluster.url} (in {folder}, removed afterwards)")
        url = _fresh_database(cluster.url, DEMO_DATABASE)
        result = _migrate(legacy, url, options, console)
        console.print("stopping the private cluster")
    return result


def _fresh_database(admin_url: str, name: str) -> str:
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(admin_url, dbname=name)


def _hot_paths_once(legacy: Path, url: str, console: Console) -> None:
    """The plan's three headline operations, once each, the app's way on SQLite and on PostgreSQL."""
    sqlite_side, pg_side = LegacyHotPaths(legacy, mode="app", writable=False), PostgresHotPaths(url, max_size=1)
    try:
        brand = pg_side.brands(1)[0]
        calls: tuple[tuple[str, Callable[[HotPaths], object]], ...] = (
            ("product list (1000)", lambda p: p.product_list(1000)),
            ("QR scan analytics, 30 days", lambda p: p.qr_analytics(brand, 30)),
            ("brand dashboard", lambda p: p.brand_dashboard(brand)))
        for label, call in calls:
            timings = []
            for side in (sqlite_side, pg_side):
                started = time.perf_counter()
                call(side)
                timings.append((time.perf_counter() - started) * 1000)
            console.print(f"  {label}: SQLite the app's way {timings[0]:,.1f} ms, PostgreSQL {timings[1]:,.1f} ms")
        console.print("  (one run each; `truelabel-db bench queries` measures them properly)")
    finally:
        sqlite_side.close()
        pg_side.close()


def _migrate(legacy: Path, url: str, options: CopyOptions, console: Console) -> CopyResult:
    result = run_copy(legacy, url, options, RichProgress(console))
    render_copy(result, console)
    console.rule("4. the optimized schema at work")
    with connect(url) as conn:
        top = conn.execute(
            "SELECT p.name, count(*) AS scans FROM qr_code_access q JOIN products p "
            "ON p.qr_code = q.qr_code GROUP BY p.name ORDER BY scans DESC LIMIT 3").fetchall()
        for name, scans in top:
            console.print(f"  most scanned: {name} ({scans:,} scans)")
        hits = one(conn.execute(
            "SELECT count(*) FROM products WHERE search_vector @@ plainto_tsquery('portuguese', %s)",
            ("proteína",)))[0]
        console.print(f"  full-text search 'proteína': {hits:,} products")
        records = list_records(conn, limit=5)
    _hot_paths_once(legacy, url, console)
    if records:
        console.rule("5. a few quarantined rows (truelabel-db quarantine list shows them all)")
        for record in records:
            reasons = "; ".join(f"{r['column']}: {r['reason']}" for r in record.reasons)
            console.print(f"  {record.legacy_table} {record.legacy_key}: {reasons}")
    return result
