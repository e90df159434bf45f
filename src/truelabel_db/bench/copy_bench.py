"""``bench copy``: our copy against the same-work floor and pgloader, on the same file, in one run.

Each contender runs as its own process so that its wall time and peak memory are its own.

The **same-work floor** is what PostgreSQL itself needs to build the very database our copy
built, from data already formatted: our result dumped uncompressed (``pg_dump -Fd -Z0``, not
timed) and restored into a fresh database with ``pg_restore -j 2`` (timed): identical tables,
partitions, indexes, keys, foreign keys and view. What our copy adds on top of it is SQLite
reading, conversion and the bookkeeping that proves nothing was lost. pgloader builds less
(dates left as integers, no partitions, enums or GIN indexes); it is the usual tool, not a
like-for-like reference. Two parts of the floor are shown for scale: SQLite reading and
formatting the largest table alone, and the server's COPY of the same rows from a file.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db.backup.pgtools import binary, tool_target
from truelabel_db.bench.measure import run_measured
from truelabel_db.postgres import connect, one

LARGEST_TABLE = ("qr_code_accesses", "qr_code_access")
OURS_DB = "truelabel_bench_ours"
SNAPSHOT, IN_PLACE, DIRTY, FLOOR, PGLOADER = "snapshot", "in-place", "dirty", "floor", "pgloader"


@dataclass
class Contender:
    key: str
    name: str
    rows: int
    seconds: float
    peak_rss_mb: float | None
    note: str = ""
    ok: bool = True

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


@dataclass
class CopyBenchRun:
    """One pass over every contender: ratios are only ever taken within a run."""

    contenders: list[Contender] = field(default_factory=list)

    def get(self, key: str) -> Contender | None:
        return next((c for c in self.contenders if c.key == key and c.ok), None)

    def ratios(self) -> dict[str, float]:
        """The issue's targets: time over the floor's (≤ 1.5), speed over pgloader's (≥ 1.2),
        the dirty file's time over the clean one's (≤ 1.2)."""
        out: dict[str, float] = {}
        floor, pgloader, clean = self.get(FLOOR), self.get(PGLOADER), self.get(SNAPSHOT)
        for key in (SNAPSHOT, IN_PLACE):
            ours = self.get(key)
            if ours and floor:
                out[f"{key}_time_vs_floor"] = round(ours.seconds / floor.seconds, 2)
            if ours and pgloader:
                out[f"{key}_speed_vs_pgloader"] = round(ours.rows_per_second / pgloader.rows_per_second, 2)
        dirty = self.get(DIRTY)
        if dirty and clean:
            out["dirty_time_vs_clean"] = round(dirty.seconds / clean.seconds, 2)
        return out


@dataclass
class CopyBenchResult:
    legacy_path: str
    legacy_rows: int
    legacy_mb: float
    runs: list[CopyBenchRun] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        def contender(c: Contender) -> dict[str, Any]:
            return {**asdict(c), "rows_per_second": round(c.rows_per_second),
                    "mb_per_second": round(self.legacy_mb / c.seconds, 1) if c.seconds else 0}
        return {"legacy_path": self.legacy_path, "legacy_rows": self.legacy_rows,
                "legacy_mb": round(self.legacy_mb, 1),
                "runs": [{"ratios": r.ratios(), "contenders": [contender(c) for c in r.contenders]}
                         for r in self.runs]}


def fresh_database(admin_url: str, name: str) -> str:
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(admin_url, dbname=name)


def bench_ours(legacy: Path, admin_url: str, workers: int, work_dir: Path, key: str) -> Contender:
    url = fresh_database(admin_url, OURS_DB)
    env = {**os.environ, "TRUELABEL_TARGET_URL": url}
    argv = [sys.executable, "-m", "truelabel_db", "copy", "--source", str(legacy),
            "--workers", str(workers), "--work-dir", str(work_dir), "--json"]
    m = run_measured(argv + (["--in-place"] if key == IN_PLACE else []), env=env)
    if m.returncode != 0:
        raise RuntimeError(f"our copy failed: {m.stderr.strip().splitlines()[-1:]}")
    doc = json.loads(m.stdout)
    totals = doc["totals"]
    note = ", ".join(f"{k} {v:.1f}s" for k, v in doc["steps"].items())
    if totals["quarantined"] or totals["repaired"]:
        note = f"{totals['quarantined']:,} quarantined, {totals['repaired']:,} repaired; " + note
    how = {SNAPSHOT: "through a snapshot (default: the app may keep writing)",
           IN_PLACE: "--in-place (file under a shared lock)",
           DIRTY: "of the dirty file of the same size (snapshot)"}[key]
    return Contender(key, f"truelabel-db copy {how}", totals["read"], m.seconds, m.peak_rss_mb, note)


def bench_floor(admin_url: str, work_dir: Path, jobs: int = 2) -> Contender:
    """``pg_restore -j`` of our own result, from an uncompressed directory dump, into a fresh database."""
    source = tool_target(psycopg.conninfo.make_conninfo(admin_url, dbname=OURS_DB))
    dump = work_dir / "floor-dump"
    shutil.rmtree(dump, ignore_errors=True)
    m = run_measured([binary("pg_dump"), "--format=directory", "--compress=0", f"--jobs={jobs}",
                      f"--file={dump}", f"--dbname={source.conninfo}"], env=source.env)
    _checked(m, "pg_dump")
    with connect(psycopg.conninfo.make_conninfo(admin_url, dbname=OURS_DB)) as conn:
        rows = _user_rows(conn)
    target = tool_target(fresh_database(admin_url, "truelabel_bench_floor"))
    m = run_measured([binary("pg_restore"), "--format=directory", f"--jobs={jobs}", "--exit-on-error",
                      f"--dbname={target.conninfo}", str(dump)], env=target.env)
    _checked(m, "pg_restore")
    shutil.rmtree(dump, ignore_errors=True)
    return Contender(FLOOR, f"same-work floor: pg_restore -j {jobs} of our result (pg_dump -Fd -Z0)",
                     rows, m.seconds, m.peak_rss_mb, "identical tables, indexes, keys, FKs and view")


def _checked(m: Any, what: str) -> None:
    if m.returncode != 0:
        raise RuntimeError(f"{what} failed: {(m.stderr.strip().splitlines() or ['?'])[-1]}")


def _user_rows(conn: psycopg.Connection) -> int:
    from truelabel_db.schema.mapping import TABLES

    return sum(_count(conn, "public", t.target) for t in TABLES)


def bench_pgloader(legacy: Path, admin_url: str, workers: int) -> Contender | None:
    """pgloader with the one setting that lets it load Prisma's file at all: dates as bigint."""
    pgloader = shutil.which("pgloader")
    if pgloader is None:
        return None
    url = fresh_database(admin_url, "truelabel_bench_pgloader")
    params = psycopg.conninfo.conninfo_to_dict(url)
    pg_uri = (f"postgresql://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:"
              f"{params.get('port', 5432)}/{params['dbname']}")
    command = (f"LOAD DATABASE FROM sqlite://{legacy.resolve()} INTO {pg_uri}\n"
               f" WITH include drop, create tables, create indexes, reset sequences,"
               f" workers = {workers}, concurrency = 1\n"
               " CAST type datetime to bigint drop default drop typemod;\n")
    with tempfile.NamedTemporaryFile("w", suffix=".load", delete=False) as fh:
        fh.write(command)
    m = run_measured([pgloader, fh.name])
    Path(fh.name).unlink(missing_ok=True)
    with connect(url) as conn:
        rows = sum(_count(conn, schema, table) for schema, table in conn.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
            "('pg_catalog', 'information_schema')").fetchall())
    ok = m.returncode == 0
    note = "dates left as bigint, columns folded to lower case" + (
        "" if ok else f"; FAILED with exit {m.returncode}: {_last_error(m.stdout + m.stderr)}")
    return Contender(PGLOADER, "pgloader (dates cast to bigint)", rows, m.seconds, m.peak_rss_mb, note, ok)


def _last_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if "ERROR" in line or "FATAL" in line
             or "exhausted" in line.lower()]
    return (lines[-1] if lines else "no error message")[:160]


def _count(conn: psycopg.Connection, schema: str, table: str) -> int:
    return int(one(conn.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
        sql.Identifier(schema), sql.Identifier(table))))[0])


def bench_server_copy(admin_url: str) -> Contender:
    """Part of the floor: the server's COPY FROM a file of the largest table, no index."""
    source_url = psycopg.conninfo.make_conninfo(admin_url, dbname=OURS_DB)
    with connect(source_url, autocommit=True) as conn:
        data_dir = one(conn.execute("SHOW data_directory"))[0]
        dump = f"{data_dir}/truelabel_bench_floor.copy"
        columns = sql.SQL("id, qr_code, ip_address, user_agent, location, accessed_at")
        conn.execute(sql.SQL("COPY (SELECT {} FROM {}) TO {}").format(
            columns, sql.Identifier(LARGEST_TABLE[1]), sql.Literal(dump)))
        conn.execute("DROP TABLE IF EXISTS truelabel_bench_floor")
        conn.execute("CREATE TABLE truelabel_bench_floor (id uuid, qr_code text, ip_address inet, "
                     "user_agent text, location jsonb, accessed_at timestamptz)")
        started = time.perf_counter()
        conn.execute(sql.SQL("COPY truelabel_bench_floor FROM {}").format(sql.Literal(dump)))
        seconds = time.perf_counter() - started
        rows = _count(conn, "public", "truelabel_bench_floor")
        conn.execute("DROP TABLE truelabel_bench_floor")
        # The server owns the file; emptying it through COPY is the one way a client can.
        conn.execute(sql.SQL("COPY (SELECT 1 WHERE false) TO {}").format(sql.Literal(dump)))
    return Contender("part:server-copy", f"part: server COPY FROM a file ({LARGEST_TABLE[0]} only, no index)",
                     rows, seconds, None, "server parsing alone")


def bench_sqlite_read(legacy: Path) -> Contender:
    """Part of the floor: reading and formatting the largest table out of SQLite, alone."""
    from truelabel_db.copy.reader import ChunkQueries, read_chunk, table_bounds
    from truelabel_db.legacy.source import reading
    from truelabel_db.schema.mapping import BY_LEGACY

    table = BY_LEGACY[LARGEST_TABLE[0]]
    queries = ChunkQueries.for_table(table)
    with reading(legacy) as conn:
        count, low, high = table_bounds(conn, table)
        started = time.perf_counter()
        rows, step = 0, 10_000
        for start in range(low, high + 1, step):
            rows += read_chunk(conn, queries, start, start + step - 1).total
        seconds = time.perf_counter() - started
    return Contender("part:sqlite-read", f"part: SQLite read + format ({LARGEST_TABLE[0]} only, one thread)",
                     rows, seconds, None, "our reader without PostgreSQL")


def legacy_file(work_dir: Path, scale: float, *, dirty: bool = False) -> Path:
    """The generated legacy file every benchmark of a scale shares, made once."""
    from truelabel_db.legacy.generator import generate

    work_dir.mkdir(parents=True, exist_ok=True)
    legacy = work_dir / f"legacy-scale{scale:g}{'-dirty' if dirty else ''}.db"
    if not legacy.exists():
        generate(legacy, scale, dirty=dirty)
    return legacy


def clean_legacy(work_dir: Path, scale: float) -> Path:
    return legacy_file(work_dir, scale)


def run_copy_bench(scale: float, admin_url: str, workers: int, work_dir: Path, *, runs: int = 1,
                   dirty: bool = True, pgloader: bool = True) -> CopyBenchResult:
    """Generate (or reuse) the legacy files at ``scale`` and measure every contender ``runs`` times."""
    from truelabel_db.legacy.source import reading

    legacy = clean_legacy(work_dir, scale)
    dirty_file = legacy_file(work_dir, scale, dirty=True) if dirty else None
    with reading(legacy) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        rows = sum(conn.execute(f"SELECT count(*) FROM \"{t}\"").fetchone()[0] for t in tables)
    result = CopyBenchResult(str(legacy), rows, legacy.stat().st_size / 1e6)
    for _ in range(runs):
        run = CopyBenchRun()
        result.runs.append(run)
        if dirty_file is not None:
            run.contenders.append(bench_ours(dirty_file, admin_url, workers, work_dir / "copy", DIRTY))
        run.contenders.append(bench_ours(legacy, admin_url, workers, work_dir / "copy", SNAPSHOT))
        run.contenders.append(bench_ours(legacy, admin_url, workers, work_dir / "copy", IN_PLACE))
        run.contenders.append(bench_floor(admin_url, work_dir))
        found = bench_pgloader(legacy, admin_url, workers) if pgloader else None
        if found is not None:
            run.contenders.append(found)
        run.contenders.append(bench_server_copy(admin_url))
        run.contenders.append(bench_sqlite_read(legacy))
    return result
