"""The follower keeps PostgreSQL equal to SQLite while the app writes, exactly once."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.fix_compare import differences
from tests.fix_legacy import NOW_MS, insert
from truelabel_db.capture import install_capture
from truelabel_db.catalog.changelog import CHANGELOG_TABLE
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.follow import Follower, FollowOptions
from truelabel_db.follow import apply as apply_module
from truelabel_db.follow.batch import SchemaChanged
from truelabel_db.legacy.generator import generate
from truelabel_db.legacy.source import check_is_sqlite
from truelabel_db.legacy.source import connect as sqlite_connect
from truelabel_db.verify import resync_check


@pytest.fixture
def live_legacy(tmp_path: Path) -> Path:
    path = tmp_path / "live.db"
    generate(path, 0.01, seed=5)
    install_capture(path)
    return path


def _copy(path: Path, url: str, tmp_path: Path) -> None:
    run_copy(path, url, CopyOptions(work_dir=tmp_path / "w", workers=2))


def _app_writes(path: Path, n: int, seed: int) -> list[tuple[str, str]]:
    """A writer with its own connection: inserts, updates and deletes across tables."""
    rng = random.Random(seed)
    app = sqlite3.connect(path, timeout=10)
    users = [r[0] for r in app.execute("SELECT id FROM users")]
    ledger = []
    for i in range(n):
        choice = rng.random()
        if choice < 0.4:
            key = insert(app, "qr_code_accesses", accessedAt=NOW_MS + i)
            ledger.append(("insert", key))
        elif choice < 0.6:
            key = insert(app, "analytics_events", entityId=str(uuid.uuid4()), userId=rng.choice(users))
            ledger.append(("insert", key))
        elif choice < 0.8:
            key = rng.choice(users)
            app.execute("UPDATE users SET name = ?, updatedAt = ? WHERE id = ?", (f"Nome {i}", NOW_MS + i, key))
            ledger.append(("update", key))
        else:
            row = app.execute("SELECT id FROM qr_code_accesses ORDER BY random() LIMIT 1").fetchone()
            app.execute("DELETE FROM qr_code_accesses WHERE id = ?", row)
            ledger.append(("delete", row[0]))
        app.commit()
    app.close()
    return ledger


def test_follow_applies_inserts_updates_deletes_and_key_changes(live_legacy: Path, pg_url: str,
                                                                 pg: psycopg.Connection, tmp_path: Path) -> None:
    _copy(live_legacy, pg_url, tmp_path)
    _app_writes(live_legacy, 200, seed=1)
    app = sqlite3.connect(live_legacy)
    lab = app.execute("SELECT id FROM laboratories WHERE id NOT IN (SELECT laboratoryId FROM reports) LIMIT 1").fetchone()
    if lab:
        app.execute("UPDATE laboratories SET id = ? WHERE id = ?", (str(uuid.uuid4()), lab[0]))
    app.commit()
    follower = Follower(live_legacy, pg_url, FollowOptions(batch_size=37))
    stats = follower.run(until_caught_up=True)
    follower.close()
    assert stats.lag_rows == 0 and stats.batches >= 5
    assert differences(live_legacy, pg) == {}


@pytest.mark.slow
def test_copy_and_follow_while_the_app_keeps_writing(live_legacy: Path, pg_url: str,
                                                     pg: psycopg.Connection, tmp_path: Path) -> None:
    ledger: list[tuple[str, str]] = []
    writer = threading.Thread(target=lambda: ledger.extend(_app_writes(live_legacy, 400, 2)))
    writer.start()
    _copy(live_legacy, pg_url, tmp_path)
    follower = Follower(live_legacy, pg_url, FollowOptions(batch_size=50))
    while writer.is_alive():
        follower.run(until_caught_up=True)
    writer.join()
    follower.run(until_caught_up=True)
    follower.close()
    assert differences(live_legacy, pg) == {}
    present = {str(r[0]) for r in pg.execute("SELECT id FROM qr_code_access UNION ALL SELECT id FROM analytics_events")}
    deleted = {key for op, key in ledger if op == "delete"}
    inserted = {key for op, key in ledger if op == "insert"} - deleted
    assert len(ledger) == 400 and inserted <= present and not (deleted & present)


@pytest.mark.slow
def test_a_crash_between_apply_and_commit_applies_nothing_and_a_rerun_converges(
        live_legacy: Path, pg_url: str, pg: psycopg.Connection, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _copy(live_legacy, pg_url, tmp_path)
    _app_writes(live_legacy, 100, seed=3)
    position = pg.execute("SELECT changelog_position FROM truelabel_meta.copy_runs").fetchone()[0]
    original = apply_module.apply_changes

    def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        original(*args, **kwargs)
        raise KeyboardInterrupt("killed mid-batch")

    monkeypatch.setattr(apply_module, "apply_changes", crash)
    follower = Follower(live_legacy, pg_url, FollowOptions(batch_size=1000))
    with pytest.raises(KeyboardInterrupt):
        follower.run(until_caught_up=True)
    follower.close()
    assert pg.execute("SELECT position FROM truelabel_meta.follow_state").fetchone()[0] == position
    monkeypatch.setattr(apply_module, "apply_changes", original)
    follower = Follower(live_legacy, pg_url, FollowOptions(batch_size=1000))
    follower.run(until_caught_up=True)
    follower.close()
    assert differences(live_legacy, pg) == {}


def test_a_legacy_schema_change_stops_the_follower_with_a_clear_message(live_legacy: Path, pg_url: str,
                                                                        tmp_path: Path) -> None:
    _copy(live_legacy, pg_url, tmp_path)
    sqlite3.connect(live_legacy).execute('ALTER TABLE users ADD COLUMN "nickname" TEXT').connection.commit()
    follower = Follower(live_legacy, pg_url)
    with pytest.raises(SchemaChanged, match="schema changed since capture was installed"):
        follower.run(until_caught_up=True)
    follower.close()


def test_lag_above_the_threshold_alerts_once_per_episode(live_legacy: Path, pg_url: str, tmp_path: Path) -> None:
    _copy(live_legacy, pg_url, tmp_path)
    _app_writes(live_legacy, 50, seed=4)
    app = sqlite3.connect(live_legacy)
    app.execute(f"UPDATE {CHANGELOG_TABLE} SET at = at - 60000")  # the changes are a minute old
    app.commit()
    marker = tmp_path / "alerted"
    follower = Follower(live_legacy, pg_url, FollowOptions(batch_size=10, lag_threshold_ms=1000,
                                                           on_lag=f"touch {marker}"))
    stats = follower.run(until_caught_up=True)
    follower.close()
    assert stats.alerts == 1 and stats.lag_ms == 0
    import time

    for _ in range(50):
        if marker.exists():
            break
        time.sleep(0.05)
    assert marker.exists()


def test_applied_changes_are_trimmed_from_the_changelog(live_legacy: Path, pg_url: str, tmp_path: Path) -> None:
    _copy(live_legacy, pg_url, tmp_path)
    _app_writes(live_legacy, 60, seed=6)
    follower = Follower(live_legacy, pg_url, FollowOptions(batch_size=10, trim_every=1))
    stats = follower.run(until_caught_up=True)
    follower.close()
    left = sqlite3.connect(live_legacy).execute(f"SELECT count(*) FROM {CHANGELOG_TABLE}").fetchone()[0]
    assert stats.trimmed > 0 and left == 0


def test_follow_refuses_to_start_without_a_copy(live_legacy: Path, pg_url: str) -> None:
    from truelabel_db.errors import TargetError
    from truelabel_db.postgres import connect
    from truelabel_db.schema.ddl import apply_schema

    with connect(pg_url, autocommit=True) as conn:
        apply_schema(conn, phases=("pre",))
    with pytest.raises(TargetError, match="nothing to follow from"):
        Follower(live_legacy, pg_url).start_position()


@pytest.mark.slow
def test_a_follower_killed_with_sigkill_resumes_exactly(live_legacy: Path, pg_url: str,
                                                        pg: psycopg.Connection, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    _copy(live_legacy, pg_url, tmp_path)
    _app_writes(live_legacy, 600, seed=8)
    start = pg.execute("SELECT changelog_position FROM truelabel_meta.copy_runs").fetchone()[0]
    argv = [sys.executable, "-m", "truelabel_db", "follow", "--source", str(live_legacy),
            "--target", pg_url, "--batch-size", "3", "--once"]
    victim = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and victim.poll() is None:
        row = pg.execute("SELECT position FROM truelabel_meta.follow_state").fetchone()
        if row and row[0] > start + 30:
            break
        time.sleep(0.02)
    assert victim.poll() is None, "the follower finished before it could be killed"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert differences(live_legacy, pg) == {}


def test_the_periodic_integrity_check_resyncs_a_row_damaged_behind_the_followers_back(
        live_legacy: Path, pg_url: str, pg: psycopg.Connection, tmp_path: Path) -> None:
    _copy(live_legacy, pg_url, tmp_path)
    pg.execute("UPDATE users SET name = 'estragado' WHERE id = (SELECT id FROM users ORDER BY id LIMIT 1)")
    follower = Follower(live_legacy, pg_url, FollowOptions(verify_every=0),
                        integrity_check=resync_check(live_legacy, pg_url))
    stats = follower.run(until_caught_up=True)
    follower.close()
    assert stats.verifications == 1 and stats.rows_resynced == 1
    assert differences(live_legacy, pg) == {}


def test_capture_status_shows_the_followers_figures(live_legacy: Path, pg_url: str, tmp_path: Path) -> None:
    import json

    from tests.fix_cli import run_cli

    _copy(live_legacy, pg_url, tmp_path)
    _app_writes(live_legacy, 20, seed=12)
    follower = Follower(live_legacy, pg_url)
    follower.run(until_caught_up=True)
    follower.close()
    shown = run_cli("capture", "status", "--source", str(live_legacy), "--target", pg_url, "--json")
    assert shown.code == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["follower"]["position"] == doc["last_seq"] and doc["follower"]["lag_rows"] == 0


def test_insert_or_replace_that_silently_deletes_a_clashing_row_is_followed(
        live_legacy: Path, pg_url: str, pg: psycopg.Connection, tmp_path: Path) -> None:
    """SQLite's REPLACE deletes the row holding the same email without a delete trigger."""
    _copy(live_legacy, pg_url, tmp_path)
    app = sqlite3.connect(live_legacy)
    email = "duplicado@example.com"
    victim = insert(app, "users", email=email)
    app.commit()
    follower = Follower(live_legacy, pg_url)
    follower.run(until_caught_up=True)
    follower.close()
    assert pg.execute("SELECT count(*) FROM users WHERE email = %s", (email,)).fetchone() == (1,)
    newcomer = str(uuid.uuid4())
    app.execute('INSERT OR REPLACE INTO users (id, email, password, name, role, "createdAt", "updatedAt") '
                "VALUES (?, ?, 'x', 'Novo', 'BRAND', ?, ?)", (newcomer, email, NOW_MS, NOW_MS))
    app.commit()
    assert app.execute("SELECT count(*) FROM users WHERE id = ?", (victim,)).fetchone() == (0,)
    follower = Follower(live_legacy, pg_url)
    follower.run(until_caught_up=True)
    follower.close()
    assert differences(live_legacy, pg) == {}


def test_the_followers_figures_are_served_as_prometheus_metrics(live_legacy: Path, pg_url: str,
                                                               tmp_path: Path) -> None:
    import urllib.request

    from truelabel_db.embedded import free_port
    from truelabel_db.follow.metrics import serve

    _copy(live_legacy, pg_url, tmp_path)
    _app_writes(live_legacy, 30, seed=13)
    follower = Follower(live_legacy, pg_url)
    follower.run(until_caught_up=True)
    port = free_port()
    server = serve(port, lambda: follower.stats)
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        server.close()
        follower.close()
    assert f"truelabel_follow_position {float(follower.stats.position)}" in body
    assert "truelabel_follow_lag_seconds 0.0" in body and "# TYPE truelabel_follow_lag_rows gauge" in body
    assert f"truelabel_follow_changes_applied_total {float(follower.stats.changes_applied)}" in body


def test_the_follower_survives_a_postgresql_restart(tmp_path: Path, cluster) -> None:  # type: ignore[no-untyped-def]
    legacy = tmp_path / "live.db"
    generate(legacy, 0.01, seed=14)
    install_capture(legacy)
    url = cluster.create_database("follow_restart")
    run_copy(legacy, url, CopyOptions(work_dir=tmp_path / "w"))
    follower = Follower(legacy, url, FollowOptions(max_backoff=0.5))
    runner = threading.Thread(target=lambda: follower.run(max_seconds=60))
    runner.start()
    _app_writes(legacy, 40, seed=15)
    cluster.restart()
    _app_writes(legacy, 40, seed=16)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT position FROM truelabel_meta.follow_state").fetchone()
        position = row[0] if row else None   # the follower may not have recorded a state yet
        last = sqlite3.connect(legacy).execute(  # the counter: applied rows may be trimmed already
            "SELECT seq FROM sqlite_sequence WHERE name = '_truelabel_changelog'").fetchone()[0]
        if position == last:
            break
        time.sleep(0.1)
    follower.stop()
    runner.join()
    follower.close()
    assert follower.stats.retries >= 1
    with psycopg.connect(url) as conn:
        assert differences(legacy, conn) == {}


def test_the_follower_waits_out_an_app_holding_the_sqlite_lock(live_legacy: Path, pg_url: str,
                                                               pg: psycopg.Connection, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _copy(live_legacy, pg_url, tmp_path)
    _app_writes(live_legacy, 20, seed=17)
    monkeypatch.setenv("TRUELABEL_BUSY_TIMEOUT_MS", "100")
    holder = sqlite3.connect(live_legacy, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    threading.Timer(1.0, holder.rollback).start()
    follower = Follower(live_legacy, pg_url, FollowOptions(max_backoff=0.3))
    stats = follower.run(until_caught_up=True)
    follower.close()
    assert stats.retries >= 1
    assert differences(live_legacy, pg) == {}


def test_opening_the_file_never_drops_the_lock_of_another_connection_in_wal_mode(live_legacy: Path) -> None:
    """Closing a Python file descriptor drops every POSIX lock of the process on that file; the
    check that a file is SQLite must not do that, or another process believes it is the last
    connection and deletes the WAL under our reader."""
    sqlite3.connect(live_legacy).execute("PRAGMA journal_mode = WAL").fetchone()
    reader = sqlite_connect(live_legacy)
    reader.execute("SELECT count(*) FROM users").fetchone()        # holds its shared lock from now on
    check_is_sqlite(live_legacy)
    sqlite_connect(live_legacy, read_only=False).close()
    subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import sqlite3
        conn = sqlite3.connect({str(live_legacy)!r}, isolation_level=None)
        conn.execute("UPDATE users SET name = name")
        conn.close()   # the last connection would checkpoint and delete the WAL
    """)], check=True)
    assert Path(str(live_legacy) + "-wal").exists()
    reader.close()


@pytest.mark.slow
def test_a_wal_mode_file_is_followed_while_another_process_writes_in_bursts(live_legacy: Path, pg_url: str,
                                                                             pg: psycopg.Connection,
                                                                             tmp_path: Path) -> None:
    sqlite3.connect(live_legacy).execute("PRAGMA journal_mode = WAL").fetchone()
    _copy(live_legacy, pg_url, tmp_path)
    follower = Follower(live_legacy, pg_url, FollowOptions(trim_every=1, batch_size=200))
    runner = threading.Thread(target=lambda: follower.run(max_seconds=120))
    runner.start()
    for burst in range(3):   # each writer process opens, writes flat out, closes: the WAL's hard case
        subprocess.run([sys.executable, "-m", "truelabel_db.bench.app_writer", "--db", str(live_legacy),
                        "--rate", "0", "--seconds", "1", "--seed", str(burst)], check=True, capture_output=True)
    deadline = time.monotonic() + 30
    with sqlite3.connect(live_legacy) as conn:  # the counter, not max(seq): applied rows may be trimmed already
        last = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = '_truelabel_changelog'").fetchone()[0]
    while follower.stats.position < last and time.monotonic() < deadline:
        time.sleep(0.05)
    follower.stop()
    runner.join()
    follower.close()
    assert follower.stats.position == last > 0
    assert differences(live_legacy, pg) == {}
