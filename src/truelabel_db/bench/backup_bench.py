"""``bench backup``: our encrypted backup and restore beside ``pg_dump | gzip`` and ``pg_restore``,
then point-in-time recovery and the DR drill, on the same scale-N database in one run.

Every backup and restore runs as its own process, timed from the outside. No peak memory is
shown: a child forked from this process (which holds the loaded benchmark's memory) reports
that size as its own peak, so the figure would say nothing about the tools. Restores go into
fresh databases and end with the same indexes and constraints, so the times compare like for
like. PITR and the drill run on a private cluster with WAL archiving, loaded from our backup.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from truelabel_db.backup.pgtools import binary, tool_target
from truelabel_db.bench.copy_bench import clean_legacy, fresh_database
from truelabel_db.bench.measure import run_measured
from truelabel_db.postgres import connect, one


@dataclass
class Timed:
    name: str
    seconds: float
    bytes: int | None = None
    note: str = ""


@dataclass
class BackupBenchResult:
    scale: float
    database_rows: int
    database_mb: float
    backups: list[Timed] = field(default_factory=list)
    restores: list[Timed] = field(default_factory=list)
    pitr: dict[str, Any] = field(default_factory=dict)
    drill: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _checked(m: Any, what: str) -> None:
    if m.returncode != 0:
        raise RuntimeError(f"{what} failed: {(m.stderr.strip().splitlines() or ['?'])[-1]}")


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _load(scale: float, admin_url: str, work_dir: Path) -> str:
    from truelabel_db.copy import CopyOptions, run_copy

    legacy = clean_legacy(work_dir, scale)
    url = fresh_database(admin_url, "truelabel_bench_backup")
    run_copy(legacy, url, CopyOptions(work_dir=work_dir / "backup-copy", truncate=True))
    return url


def bench_backups(url: str, repo: Path, dumps: Path, jobs: int, env: dict[str, str]) -> tuple[list[Timed], str]:
    cli = [sys.executable, "-m", "truelabel_db"]
    m = run_measured([*cli, "backup", "run", "--to", str(repo), "--jobs", str(jobs), "--json"],
                     env={**env, "TRUELABEL_TARGET_URL": url})
    _checked(m, "our backup")
    doc = json.loads(m.stdout)
    ours = Timed("truelabel-db backup run (pg_dump -Fd -j, gzip 6, AES-256-GCM, SHA-256 manifest, exact row counts)",
                 m.seconds, doc["stored_bytes"])
    target = tool_target(url)
    shutil.rmtree(dumps, ignore_errors=True)
    dumps.mkdir(parents=True)
    m = run_measured(["sh", "-c", f'"{binary("pg_dump")}" --dbname="$TL_CONNINFO" | gzip > "{dumps}/plain.sql.gz"'],
                     env={**target.env, "TL_CONNINFO": target.conninfo})
    _checked(m, "pg_dump | gzip")
    plain = Timed("pg_dump | gzip (plain SQL, gzip -6, one process)", m.seconds,
                  (dumps / "plain.sql.gz").stat().st_size, "no encryption, no checksums")
    m = run_measured([binary("pg_dump"), "--format=directory", f"--jobs={jobs}", "--compress=6",
                      f"--file={dumps / 'dir'}", f"--dbname={target.conninfo}"], env=target.env)
    _checked(m, "pg_dump -Fd")
    directory = Timed(f"pg_dump -Fd -j {jobs} -Z 6 (what ours runs, unencrypted)", m.seconds,
                      _folder_bytes(dumps / "dir"), "no encryption, no checksums")
    return [ours, plain, directory], doc["id"]


def bench_restores(admin_url: str, repo: Path, dumps: Path, backup_id: str, jobs: int,
                   env: dict[str, str]) -> list[Timed]:
    out = []
    url = fresh_database(admin_url, "truelabel_bench_restore_ours")
    m = run_measured([sys.executable, "-m", "truelabel_db", "restore", backup_id, "--to", str(repo),
                      "--jobs", str(jobs)], env={**env, "TRUELABEL_TARGET_URL": url})
    _checked(m, "our restore")
    out.append(Timed(f"truelabel-db restore (fetch, check SHA-256, decrypt, pg_restore -j {jobs}, count every table)",
                     m.seconds, None))
    target = tool_target(fresh_database(admin_url, "truelabel_bench_restore_pg"))
    m = run_measured([binary("pg_restore"), "--format=directory", f"--jobs={jobs}", "--no-owner", "--no-privileges",
                      "--exit-on-error", f"--dbname={target.conninfo}", str(dumps / "dir")], env=target.env)
    _checked(m, "pg_restore")
    out.append(Timed(f"pg_restore -j {jobs} (from the unencrypted pg_dump -Fd)", m.seconds, None))
    target = tool_target(fresh_database(admin_url, "truelabel_bench_restore_plain"))
    m = run_measured(["sh", "-c", f'gunzip -c "{dumps}/plain.sql.gz" | "{binary("psql")}" -q -X -v ON_ERROR_STOP=1 '
                      '--dbname="$TL_CONNINFO" > /dev/null'], env={**target.env, "TL_CONNINFO": target.conninfo})
    _checked(m, "gunzip | psql")
    out.append(Timed("gunzip | psql (the plain dump, one session)", m.seconds))
    for name in ("truelabel_bench_restore_ours", "truelabel_bench_restore_pg", "truelabel_bench_restore_plain"):
        from truelabel_db.backup.database import drop_database, sibling_url

        drop_database(sibling_url(admin_url, name))
    return out


def bench_pitr_and_drill(repo: Path, backup_id: str, work_dir: Path, jobs: int,
                         key: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    from truelabel_db.backup import open_storage, restore_backup, run_backup
    from truelabel_db.backup.logical import BackupOptions
    from truelabel_db.dr.drill import run_drill
    from truelabel_db.embedded import EmbeddedCluster
    from truelabel_db.pitr.basebackup import take_basebackup
    from truelabel_db.pitr.repo import PitrRepo
    from truelabel_db.pitr.restore import restore_to_time, wait_until_promoted
    from truelabel_db.pitr.setup import setup_archiving

    base = (work_dir / "pitr").resolve()
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    base.chmod(0o755)
    production = EmbeddedCluster(base / "production").start()
    restored: EmbeddedCluster | None = None
    try:
        pitr = PitrRepo(base / "repo")
        setup_archiving(production.url, pitr.root)
        production.restart()
        app = production.create_database("truelabel")
        started = time.perf_counter()
        restore_backup(open_storage(str(repo)), backup_id, app, key, jobs=jobs)
        load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        info = take_basebackup(production.url, pitr)
        basebackup_seconds = time.perf_counter() - started
        with psycopg.connect(app, autocommit=True) as conn:
            conn.execute("CREATE TABLE pitr_marks (n int PRIMARY KEY)")
            conn.execute("INSERT INTO pitr_marks SELECT generate_series(1, 1000)")
            noted = one(conn.execute("SELECT clock_timestamp()"))[0]
            conn.execute("INSERT INTO pitr_marks SELECT generate_series(1001, 2000)")
            segment = one(conn.execute("SELECT pg_walfile_name(pg_switch_wal())"))[0]
            while (one(conn.execute("SELECT last_archived_wal FROM pg_stat_archiver"))[0] or "") < segment:
                time.sleep(0.2)
        started = time.perf_counter()
        restore_to_time(pitr, noted, base / "restored" / "data")
        built = time.perf_counter() - started
        restored = EmbeddedCluster(base / "restored").start()
        wait_until_promoted(restored.url)
        pitr_seconds = time.perf_counter() - started
        with psycopg.connect(restored.url_for("truelabel")) as conn:
            found = one(conn.execute("SELECT count(*) FROM pitr_marks"))[0]
        restored.stop()
        restored = None
        pitr_doc = {"load_from_our_backup_seconds": round(load_seconds, 2),
                    "basebackup_seconds": round(basebackup_seconds, 2),
                    "basebackup_mb": round(info.bytes / 1e6, 1), "restore_build_data_dir_seconds": round(built, 2),
                    "restore_to_promoted_seconds": round(pitr_seconds, 2),
                    "wal_segments_archived": len([p for p in pitr.wal.iterdir() if len(p.name) == 24]),
                    "marker_rows_expected": 1000, "marker_rows_found": found}
        drill_repo = open_storage(str(base / "drill-repo"), create=True)
        run_backup(app, drill_repo, key, BackupOptions(jobs=jobs))
        report = run_drill(app, drill_repo, key, pitr_repo=pitr, jobs=jobs)
        return pitr_doc, report.to_dict()
    finally:
        if restored is not None:
            restored.stop()
        production.stop()


def run_backup_bench(scale: float, admin_url: str, work_dir: Path, jobs: int = 2) -> BackupBenchResult:
    work_dir = work_dir.resolve()
    url = _load(scale, admin_url, work_dir)
    with connect(url) as conn:
        from truelabel_db.backup.database import row_counts

        rows = sum(row_counts(conn).values())
        size = one(conn.execute("SELECT pg_database_size(current_database())"))[0]
    result = BackupBenchResult(scale, rows, round(size / 1e6, 1))
    key = secrets.token_bytes(32)
    env = {**os.environ, "TRUELABEL_BACKUP_KEY": base64.b64encode(key).decode()}
    repo, dumps = work_dir / "backup-repo", work_dir / "backup-dumps"
    shutil.rmtree(repo, ignore_errors=True)
    result.backups, backup_id = bench_backups(url, repo, dumps, jobs, env)
    result.restores = bench_restores(admin_url, repo, dumps, backup_id, jobs, env)
    result.pitr, result.drill = bench_pitr_and_drill(repo, backup_id, work_dir, jobs, key)
    return result
