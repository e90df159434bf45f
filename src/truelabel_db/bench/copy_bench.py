"""``bench copy``: our copy against pgloader and PostgreSQL's own COPY, on the same file.

Each contender runs as its own process so that its wall time and peak memory are its own.
The COPY floor loads the largest table from a server-side file into a plain logged table with
no index: no tool can load those rows faster than the server parses them.
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

from truelabel_db.bench.measure import run_measured
from truelabel_db.postgres import connect

LARGEST_TABLE = ("qr_code_accesses", "qr_code_access")


@dataclass
class Contender:
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
class CopyBenchResult:
    legacy_path: str
    legacy_rows: int
    legacy_mb: float
    contenders: list[Contender] = field(default_factory=list)

    def ratios(self) -> dict[str, float]:
        """Our in-place copy against each reference, as the issue's targets state them."""
        by_name = {c.name.split(" ")[0] + (" in-place" if "--in-place" in c.name else ""): c
                   for c in self.contenders if c.ok}
        ours = by_name.get("truelabel-db in-place")
        out: dict[str, float] = {}
        if ours and "pgloader" in by_name:
            out["rows_per_second_vs_pgloader"] = round(ours.rows_per_second / by_name["pgloader"].rows_per_second, 2)
        if ours and "PostgreSQL" in by_name:
            out["seconds_per_row_vs_copy_floor"] = round(by_name["PostgreSQL"].rows_per_second / ours.rows_per_second, 2)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"legacy_path": self.legacy_path, "legacy_rows": self.legacy_rows, "ratios": self.ratios(),
                "legacy_mb": round(self.legacy_mb, 1),
                "contenders": [{**asdict(c), "rows_per_second": round(c.rows_per_second),
                                "mb_per_second": round(self.legacy_mb / c.seconds, 1) if c.seconds else 0}
                               for c in self.contenders]}


def fresh_database(admin_url: str, name: str) -> str:
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(admin_url, dbname=name)


def bench_ours(legacy: Path, admin_url: str, workers: int, work_dir: Path, *,
               in_place: bool) -> Contender:
    url = fresh_database(admin_url, "truelabel_bench_ours")
    env = {**os.environ, "TRUELABEL_TARGET_URL": url}
    argv = [sys.executable, "-m", "truelabel_db", "copy", "--source", str(legacy),
            "--workers", str(workers), "--work-dir", str(work_dir), "--json"]
    m = run_measured(argv + (["--in-place"] if in_place else []), env=env)
    if m.returncode != 0:
        raise RuntimeError(f"our copy failed: {m.stderr.strip().splitlines()[-1:]}")
    doc = json.loads(m.stdout)
    note = ", ".join(f"{k} {v:.1f}s" for k, v in doc["steps"].items())
    how = "--in-place (file under a shared lock)" if in_place else "through a snapshot (app keeps writing)"
    return Contender(f"truelabel-db copy {how}: optimized schema, keys, indexes, FKs, view, ANALYZE",
                     doc["totals"]["written"], m.seconds, m.peak_rss_mb, note)


def bench_pgloader(legacy: Path, admin_url: str, workers: int) -> Contender | None:
    """pgloader with the one setting that lets it load Prisma's file at all: dates as bigint."""
    binary = shutil.which("pgloader")
    if binary is None:
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
    m = run_measured([binary, fh.name])
    Path(fh.name).unlink(missing_ok=True)
    with connect(url) as conn:
        rows = sum(_count(conn, schema, table) for schema, table in conn.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
            "('pg_catalog', 'information_schema')").fetchall())
    ok = m.returncode == 0
    note = "dates left as bigint, columns folded to lower case" + (
        "" if ok else f"; FAILED with exit {m.returncode}: {_last_error(m.stdout + m.stderr)}")
    return Contender("pgloader (dates cast to bigint)", rows, m.seconds, m.peak_rss_mb, note, ok)


def _last_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if "ERROR" in line or "FATAL" in line
             or "exhausted" in line.lower()]
    return (lines[-1] if lines else "no error message")[:160]


def _count(conn: psycopg.Connection, schema: str, table: str) -> int:
    return int(conn.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
        sql.Identifier(schema), sql.Identifier(table))).fetchone()[0])


def bench_copy_floor(admin_url: str) -> Contender:
    """Server-side COPY FROM a file of the largest table's rows, into a plain logged table."""
    source_url = psycopg.conninfo.make_conninfo(admin_url, dbname="truelabel_bench_ours")
    with connect(source_url, autocommit=True) as conn:
        data_dir = conn.execute("SHOW data_directory").fetchone()[0]
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
    return Contender(f"PostgreSQL COPY FROM server file ({LARGEST_TABLE[0]} only, no index)",
                     rows, seconds, None, "the floor: server parsing alone")


def bench_sqlite_read(legacy: Path) -> Contender:
    """Reading and formatting the largest table out of SQLite, alone: the other half of the floor."""
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
    return Contender(f"SQLite read + format ({LARGEST_TABLE[0]} only, one thread)", rows, seconds,
                     None, "our reader without PostgreSQL")


def clean_legacy(work_dir: Path, scale: float) -> Path:
    """The clean generated legacy file every benchmark of a scale shares, made once."""
    from truelabel_db.legacy.generator import generate

    work_dir.mkdir(parents=True, exist_ok=True)
    legacy = work_dir / f"legacy-scale{scale:g}.db"
    if not legacy.exists():
        generate(legacy, scale, dirty=False)
    return legacy


def run_copy_bench(scale: float, admin_url: str, workers: int, work_dir: Path) -> CopyBenchResult:
    """Generate (or reuse) a clean legacy file at ``scale`` and measure every contender on it."""
    from truelabel_db.legacy.source import reading

    legacy = clean_legacy(work_dir, scale)

    with reading(legacy) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        rows = sum(conn.execute(f"SELECT count(*) FROM \"{t}\"").fetchone()[0] for t in tables)
    result = CopyBenchResult(str(legacy), rows, legacy.stat().st_size / 1e6)
    result.contenders.append(bench_ours(legacy, admin_url, workers, work_dir / "copy", in_place=False))
    result.contenders.append(bench_ours(legacy, admin_url, workers, work_dir / "copy", in_place=True))
    result.contenders.append(bench_copy_floor(admin_url))
    result.contenders.append(bench_sqlite_read(legacy))
    pgloader = bench_pgloader(legacy, admin_url, workers)
    if pgloader is not None:
        result.contenders.append(pgloader)
    return result
