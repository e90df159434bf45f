"""``migrate``: the whole sequence under a live writer, checkpointed and resumable."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.fix_wait import wait_until
from truelabel_db.bench.gated_writer import WriterLedger, gated_writer
from truelabel_db.capture import capture_status
from truelabel_db.client import AppGate
from truelabel_db.cutover.gate import Gate, connect_redis
from truelabel_db.errors import SourceError
from truelabel_db.legacy.generator import generate
from truelabel_db.migrate import STEPS, MigrateError, MigrateOptions, migrate


@pytest.fixture
def legacy(tmp_path: Path, redis_url: str) -> Path:
    path = tmp_path / "prod.db"
    generate(path, 0.01, seed=31)
    Gate(connect_redis(redis_url)).publish_primary("sqlite", str(path))
    return path


@pytest.mark.slow
def test_migrate_under_a_gated_writer_loses_and_fails_nothing(legacy: Path, pg_url: str, redis_url: str,
                                                              pg: psycopg.Connection, tmp_path: Path) -> None:
    stop, ledger = threading.Event(), WriterLedger()
    writer = threading.Thread(target=gated_writer, daemon=True,
                              args=(legacy, pg_url, AppGate(redis_url=redis_url), 200, stop, ledger))
    writer.start()
    try:
        wait_until(lambda: len(ledger.sqlite_writes) >= 10, "the app writes to SQLite")
        report = migrate(legacy, pg_url, MigrateOptions(redis_url=redis_url, work_dir=tmp_path / "m"))
        wait_until(lambda: len(ledger.postgres_writes) >= 10, "the app writes to PostgreSQL")
    finally:
        stop.set()
        writer.join()
    assert report.done == list(STEPS) and ledger.failed == []
    found = pg.execute("SELECT count(*) FROM qr_code_access WHERE id = ANY(%s::uuid[])",
                       (ledger.committed,)).fetchone()[0]
    assert found == len(ledger.committed) > 0
    assert Path(report.details["backup"]["path"]).exists()
    assert AppGate(redis_url=redis_url).current_primary().kind == "postgresql"
    again = migrate(legacy, pg_url, MigrateOptions(redis_url=redis_url, work_dir=tmp_path / "m"))
    assert again.done == [] and again.skipped == list(STEPS)


def test_a_failed_cutover_leaves_the_app_on_sqlite_and_a_rerun_resumes_there(
        legacy: Path, pg_url: str, redis_url: str, tmp_path: Path) -> None:
    failing = MigrateOptions(redis_url=redis_url, work_dir=tmp_path / "m", switch_cmd="false")
    with pytest.raises(MigrateError, match="stopped at cutover"):
        migrate(legacy, pg_url, failing)
    app = AppGate(redis_url=redis_url)
    assert app.current_primary().kind == "sqlite" and not app.is_read_only()
    sqlite3.connect(legacy).execute("UPDATE users SET name = 'ainda SQLite'").connection.commit()
    fixed = migrate(legacy, pg_url, MigrateOptions(redis_url=redis_url, work_dir=tmp_path / "m"))
    assert fixed.skipped == list(STEPS[:-1]) and fixed.done == ["cutover"]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT DISTINCT name FROM users").fetchall() == [("ainda SQLite",)]


def test_capture_installed_by_a_run_that_fails_before_the_copy_comes_out(
        legacy: Path, redis_url: str, tmp_path: Path) -> None:
    from truelabel_db.migrate import _Migration

    run = _Migration(legacy, "postgresql://unused", MigrateOptions(redis_url=redis_url), lambda _: None)
    run.step_capture()
    run.undo(["backup", "schema", "capture"])
    assert not capture_status(legacy).installed


@pytest.mark.slow
def test_migrate_killed_between_steps_resumes_from_its_last_checkpoint(legacy: Path, pg_url: str, redis_url: str,
                                                                        tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    argv = [sys.executable, "-m", "truelabel_db", "migrate", "--source", str(legacy), "--target", pg_url,
            "--redis", redis_url, "--work-dir", str(tmp_path / "m"), "--json"]
    victim = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    done: set[str] = set()
    while time.monotonic() < deadline and victim.poll() is None and "copy" not in done:
        try:
            with psycopg.connect(pg_url) as conn:
                done = {r[0] for r in conn.execute("SELECT step FROM truelabel_meta.migrate_checkpoints")}
        except psycopg.Error:
            pass
        time.sleep(0.02)
    assert victim.poll() is None, "migrate finished before it could be killed"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    import json

    report = json.loads(rerun.stdout)
    assert {"backup", "schema", "capture", "copy"} <= set(report["skipped"])
    assert report["done"][-1] == "cutover"


def test_a_file_that_is_not_the_apps_is_refused_before_anything_is_made_of_it(tmp_path: Path, pg_url: str,
                                                                              redis_url: str) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE notes (id INTEGER PRIMARY KEY)").connection.commit()
    work = tmp_path / "work"
    with pytest.raises(SourceError, match="not a True Label database"):
        migrate(other, pg_url, MigrateOptions(redis_url, work_dir=work))
    assert not work.exists()  # before: a backup of the file, then the refusal at the capture step
    with psycopg.connect(pg_url) as conn:  # ... and the catalog made in the target
        assert conn.execute("SELECT to_regnamespace('truelabel_meta')").fetchone() == (None,)
