"""Cutover: a writer that honours the gate loses nothing and fails nothing; faults undo."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import psycopg
import pytest

from tests.fix_compare import differences
from tests.fix_wait import wait_until
from truelabel_db.bench.gated_writer import WriterLedger, gated_writer
from truelabel_db.capture import install_capture
from truelabel_db.client import AppGate
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.cutover.fence import fence_installed
from truelabel_db.cutover.gate import Gate, connect_redis
from truelabel_db.cutover.run import CutoverError, CutoverOptions, cutover
from truelabel_db.follow import Follower
from truelabel_db.legacy.generator import generate

WRITES = 10   # app writes to see on a side before moving on (at 300/s: about 30 ms)


@pytest.fixture
def followed(tmp_path: Path, pg_url: str, redis_url: str) -> Path:
    legacy = tmp_path / "live.db"
    generate(legacy, 0.01, seed=21)
    install_capture(legacy)
    run_copy(legacy, pg_url, CopyOptions(work_dir=tmp_path / "w"))
    Gate(connect_redis(redis_url)).publish_primary("sqlite", str(legacy))
    follower = Follower(legacy, pg_url)
    follower.run(until_caught_up=True)
    follower.close()
    return legacy


def _writer(legacy: Path, pg_url: str, redis_url: str) -> tuple[threading.Thread, threading.Event, WriterLedger]:
    stop, ledger = threading.Event(), WriterLedger()
    thread = threading.Thread(target=gated_writer, args=(legacy, pg_url, AppGate(redis_url=redis_url), 300,
                                                         stop, ledger), daemon=True)
    thread.start()
    return thread, stop, ledger


def test_a_gated_writer_loses_nothing_and_fails_nothing_through_cutover(
        followed: Path, pg_url: str, redis_url: str, pg: psycopg.Connection) -> None:
    thread, stop, ledger = _writer(followed, pg_url, redis_url)
    try:
        wait_until(lambda: len(ledger.sqlite_writes) >= WRITES, "the app writes to SQLite")
        report = cutover(followed, pg_url, CutoverOptions(redis_url=redis_url))
        wait_until(lambda: len(ledger.postgres_writes) >= WRITES, "the app writes to PostgreSQL")
    finally:
        stop.set()
        thread.join()
    assert ledger.failed == [] and ledger.sqlite_writes and ledger.postgres_writes
    ids = [str(r[0]) for r in pg.execute("SELECT id FROM qr_code_access WHERE id = ANY(%s::uuid[])",
                                         (ledger.committed,))]
    assert sorted(ids) == sorted(ledger.committed)  # every committed write, exactly once
    assert report.switched and report.write_pause_ms > 0 and report.marker_seq > 0
    assert [s for s, _ in report.steps] == ["catch up", "reverse capture", "raise gate", "lock+fence", "drain",
                                            "verify", "sequences", "switch", "lower gate"]
    assert fence_installed(followed)
    assert AppGate(redis_url=redis_url).current_primary().kind == "postgresql"
    assert not AppGate(redis_url=redis_url).is_read_only()


@pytest.mark.parametrize("fault", ["switch command fails", "health never turns healthy"])
def test_a_failing_switch_puts_everything_back(followed: Path, pg_url: str, redis_url: str,
                                               fault: str, pg: psycopg.Connection) -> None:
    options = (CutoverOptions(redis_url=redis_url, switch_cmd="false") if fault.startswith("switch") else
               CutoverOptions(redis_url=redis_url, health_url="http://127.0.0.1:1/health", health_timeout=0.5))
    with pytest.raises(CutoverError, match="undone"):
        cutover(followed, pg_url, options)
    app = AppGate(redis_url=redis_url)
    assert not app.is_read_only() and app.current_primary().kind == "sqlite"
    assert not fence_installed(followed)
    sqlite3.connect(followed).execute("DELETE FROM qr_code_accesses WHERE rowid = 1").connection.commit()
    follower = Follower(followed, pg_url)
    follower.run(until_caught_up=True)
    follower.close()
    assert differences(followed, pg) == {}


def test_redis_unreachable_stops_the_cutover_before_it_touches_anything(followed: Path, pg_url: str) -> None:
    from truelabel_db.cutover.gate import GateError

    with pytest.raises(GateError, match="unreachable"):
        cutover(followed, pg_url, CutoverOptions(redis_url="redis://127.0.0.1:1/0"))
    assert not fence_installed(followed)


def test_rollback_after_cutover_brings_every_postgresql_write_back_to_sqlite(
        followed: Path, pg_url: str, redis_url: str, pg: psycopg.Connection) -> None:
    from truelabel_db.cutover.reverse import rollback

    thread, stop, ledger = _writer(followed, pg_url, redis_url)
    try:
        wait_until(lambda: len(ledger.sqlite_writes) >= WRITES, "the app writes to SQLite")
        cutover(followed, pg_url, CutoverOptions(redis_url=redis_url))
        wait_until(lambda: len(ledger.postgres_writes) >= WRITES, "the app writes to PostgreSQL")
        user = str(pg.execute("SELECT id FROM users WHERE role = 'LABORATORY' LIMIT 1").fetchone()[0])
        pg.execute("UPDATE users SET name = 'Depois do corte', updated_at = now() WHERE id = %s", (user,))
        gone = str(pg.execute("DELETE FROM qr_code_access WHERE id = (SELECT id FROM qr_code_access "
                              "ORDER BY id LIMIT 1) RETURNING id").fetchone()[0])
        report = rollback(followed, pg_url, redis_url)
        before = len(ledger.sqlite_writes)
        wait_until(lambda: len(ledger.sqlite_writes) >= before + WRITES, "the app writes to SQLite again")
    finally:
        stop.set()
        thread.join()
    assert ledger.failed == [] and ledger.postgres_writes and report.replayed >= len(ledger.postgres_writes)
    legacy = sqlite3.connect(followed)
    marks = ", ".join("?" * len(ledger.committed))
    assert legacy.execute(f"SELECT count(*) FROM qr_code_accesses WHERE id IN ({marks})",
                          ledger.committed).fetchone()[0] == len(ledger.committed)
    assert legacy.execute("SELECT name, role FROM users WHERE id = ?", (user,)).fetchone() == ("Depois do corte", "LAB")
    assert legacy.execute("SELECT count(*) FROM qr_code_accesses WHERE id = ?", (gone,)).fetchone() == (0,)
    assert not fence_installed(followed)
    app = AppGate(redis_url=redis_url)
    assert app.current_primary().kind == "sqlite" and not app.is_read_only()


def test_postgresql_restarting_during_the_drain_is_waited_out(tmp_path: Path, cluster, redis_url: str,  # type: ignore[no-untyped-def]
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from truelabel_db.cutover import run as cutover_module

    legacy = tmp_path / "live.db"
    generate(legacy, 0.01, seed=22)
    install_capture(legacy)
    url = cluster.create_database("cutover_restart")
    run_copy(legacy, url, CopyOptions(work_dir=tmp_path / "w"))
    Gate(connect_redis(redis_url)).publish_primary("sqlite", str(legacy))
    sqlite3.connect(legacy).execute("UPDATE users SET name = 'antes da reinicialização'").connection.commit()
    original = cutover_module._Run.drain

    def drain_across_a_restart(self):  # type: ignore[no-untyped-def]
        cluster.restart()
        return original(self)

    monkeypatch.setattr(cutover_module._Run, "drain", drain_across_a_restart)
    report = cutover(legacy, url, CutoverOptions(redis_url=redis_url))
    assert report.switched
    with psycopg.connect(url) as conn:
        assert differences(legacy, conn) == {}
        assert conn.execute("SELECT DISTINCT name FROM users").fetchall() == [("antes da reinicialização",)]
