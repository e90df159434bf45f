"""After cutover nothing of ours touches the rows the app wrote to PostgreSQL, the least-privilege
app role can write, the gate holds however long a step takes, and a rollback loses nothing."""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import redis

from tests.fix_cli import run_cli
from truelabel_db.capture import capture_status, install_capture, remove_capture
from truelabel_db.catalog import primary
from truelabel_db.client import AppGate
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.cutover import reverse
from truelabel_db.cutover.fence import fence_installed
from truelabel_db.cutover.gate import READONLY_KEY, Gate, connect_redis
from truelabel_db.cutover.reverse import RollbackError, rollback
from truelabel_db.cutover.run import CutoverError, CutoverOptions, cutover
from truelabel_db.errors import ExitCode
from truelabel_db.follow import Follower, FollowOptions
from truelabel_db.guard import NotPrimaryError
from truelabel_db.legacy.generator import generate
from truelabel_db.quarantine import redrive
from truelabel_db.schema.roles import ensure_roles
from truelabel_db.verify import resync_check, verify

NOW = "2026-11-29 12:00:00+00"


@pytest.fixture
def cut_over(tmp_path: Path, pg_url: str, redis_url: str) -> Path:
    """A legacy file copied, followed and cut over: PostgreSQL is the primary."""
    legacy = tmp_path / "live.db"
    generate(legacy, 0.01, seed=31)
    install_capture(legacy)
    run_copy(legacy, pg_url, CopyOptions(work_dir=tmp_path / "w"))
    follower = Follower(legacy, pg_url)
    follower.run(until_caught_up=True)
    follower.close()
    cutover(legacy, pg_url, CutoverOptions(redis_url=redis_url))
    return legacy


def _app_writes_to_postgres(pg: psycopg.Connection) -> str:
    """What the app does after cutover: a new scan and a renamed user, in PostgreSQL only."""
    scan = str(uuid.uuid4())
    pg.execute("INSERT INTO qr_code_access (id, qr_code, accessed_at) VALUES (%s, 'QR-NEW', %s)", (scan, NOW))
    pg.execute("UPDATE users SET name = 'escrito no PostgreSQL' WHERE id = (SELECT id FROM users ORDER BY id LIMIT 1)")
    return scan


def test_repair_after_cutover_is_refused_and_deletes_nothing(
        cut_over: Path, pg_url: str, pg: psycopg.Connection) -> None:
    scan = _app_writes_to_postgres(pg)
    assert not verify(cut_over, pg_url).equal  # PostgreSQL moved on: that is the app's business now
    with pytest.raises(NotPrimaryError, match="PostgreSQL has been the primary"):
        verify(cut_over, pg_url, repair=True)
    shown = run_cli("verify", "--source", str(cut_over), "--target", pg_url, "--repair")
    assert shown.code == ExitCode.NOT_PRIMARY and "Traceback" not in shown.stderr
    assert pg.execute("SELECT count(*) FROM qr_code_access WHERE id = %s", (scan,)).fetchone()[0] == 1


def test_a_follower_left_running_stops_at_cutover_instead_of_repairing(
        cut_over: Path, pg_url: str, pg: psycopg.Connection) -> None:
    scan = _app_writes_to_postgres(pg)
    follower = Follower(cut_over, pg_url, FollowOptions(verify_every=0),
                        integrity_check=resync_check(cut_over, pg_url))
    with pytest.raises(NotPrimaryError):
        follower.run(until_caught_up=True)
    follower.close()
    assert pg.execute("SELECT count(*) FROM qr_code_access WHERE id = %s", (scan,)).fetchone()[0] == 1


def test_copy_truncate_and_redrive_are_refused_after_cutover(
        cut_over: Path, pg_url: str, pg: psycopg.Connection, tmp_path: Path) -> None:
    scan = _app_writes_to_postgres(pg)
    shown = run_cli("copy", "--source", str(cut_over), "--target", pg_url, "--truncate",
                    "--work-dir", str(tmp_path / "again"))
    assert shown.code == ExitCode.NOT_PRIMARY, shown.stderr
    with pytest.raises(NotPrimaryError):
        redrive(pg)
    assert pg.execute("SELECT count(*) FROM qr_code_access WHERE id = %s", (scan,)).fetchone()[0] == 1


def test_the_least_privilege_app_role_can_write_after_cutover(
        cut_over: Path, pg_url: str, pg: psycopg.Connection) -> None:
    suffix = uuid.uuid4().hex[:8]
    app_role, readonly, login = f"tl_app_{suffix}", f"tl_ro_{suffix}", f"tl_login_{suffix}"
    ensure_roles(pg, app_role, readonly, login, password="s3cret-app")
    try:
        with psycopg.connect(psycopg.conninfo.make_conninfo(pg_url, user=login), autocommit=True) as app:
            app.execute("UPDATE users SET name = 'pelo app' WHERE id = (SELECT id FROM users ORDER BY id LIMIT 1)")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute("SELECT count(*) FROM truelabel_meta.reverse_changelog")
        assert pg.execute("SELECT count(*) FROM truelabel_meta.reverse_changelog").fetchone()[0] == 1
    finally:
        for role in (login, app_role, readonly):
            pg.execute(psycopg.sql.SQL("DROP OWNED BY {}").format(psycopg.sql.Identifier(role)))
            pg.execute(psycopg.sql.SQL("DROP ROLE {}").format(psycopg.sql.Identifier(role)))


def test_the_gate_stays_raised_through_a_switch_longer_than_its_expiry(
        tmp_path: Path, pg_url: str, redis_url: str) -> None:
    legacy = tmp_path / "live.db"
    generate(legacy, 0.01, seed=32)
    install_capture(legacy)
    run_copy(legacy, pg_url, CopyOptions(work_dir=tmp_path / "w"))
    watch, seen, stop = redis.Redis.from_url(redis_url), [], threading.Event()

    def poll() -> None:
        while not stop.is_set():
            seen.append(bool(watch.exists(READONLY_KEY)))
            time.sleep(0.02)

    slow_switch = f"{sys.executable} -c 'import time; time.sleep(1.5)'"
    thread = threading.Thread(target=poll)
    thread.start()
    try:
        cutover(legacy, pg_url, CutoverOptions(redis_url=redis_url, gate_ttl_ms=300, switch_cmd=slow_switch))
    finally:
        stop.set()
        thread.join()
    raised = seen[seen.index(True):len(seen) - seen[::-1].index(True)]
    assert len(raised) > 50 and all(raised)  # up for the whole 1.5 s switch, five expiries long


def test_a_health_check_failing_after_the_app_wrote_to_postgres_replays_those_writes(
        tmp_path: Path, pg_url: str, redis_url: str) -> None:
    legacy = tmp_path / "live.db"
    generate(legacy, 0.01, seed=33)
    install_capture(legacy)
    run_copy(legacy, pg_url, CopyOptions(work_dir=tmp_path / "w"))
    scan = str(uuid.uuid4())
    write = (f"{sys.executable} -c \"import psycopg; psycopg.connect({pg_url!r}, autocommit=True).execute("
             f"'INSERT INTO qr_code_access (id, qr_code, accessed_at) VALUES (%s, %s, %s)', "
             f"({scan!r}, 'QR-APP', {NOW!r}))\"")
    switch = tmp_path / "switch.sh"  # the app, pointed at PostgreSQL by the switch, writes at once
    switch.write_text(f"#!/bin/sh\n{write}\n")
    switch.chmod(0o755)
    with pytest.raises(CutoverError, match="with the 1 change"):
        cutover(legacy, pg_url, CutoverOptions(redis_url=redis_url, switch_cmd=str(switch),
                                               health_url="http://127.0.0.1:1/health", health_timeout=0.3))
    assert AppGate(redis_url=redis_url).current_primary().kind == "sqlite"
    assert not fence_installed(legacy)
    assert sqlite3.connect(legacy).execute("SELECT count(*) FROM qr_code_accesses WHERE id = ?",
                                           (scan,)).fetchone()[0] == 1


def test_rollback_fences_postgres_and_a_crash_midway_resumes_without_loss(
        cut_over: Path, pg_url: str, redis_url: str, pg: psycopg.Connection,
        monkeypatch: pytest.MonkeyPatch) -> None:
    scans = [str(uuid.uuid4()) for _ in range(5)]
    for scan in scans:
        pg.execute("INSERT INTO qr_code_access (id, qr_code, accessed_at) VALUES (%s, 'QR', %s)", (scan, NOW))
    original, calls = reverse._replay_table, []

    def crash_on_the_third_batch(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 3:
            raise sqlite3.OperationalError("disk I/O error (injected)")
        return original(*args, **kwargs)

    monkeypatch.setattr(reverse, "_replay_table", crash_on_the_third_batch)
    monkeypatch.setattr(reverse, "REPLAY_BATCH", 1)
    gate = Gate(connect_redis(redis_url))
    with pytest.raises(RollbackError, match="still the primary"):
        reverse.Rollback(cut_over, pg_url, gate, batch=1).run()
    assert primary.current(pg, str(cut_over.resolve())).primary == "postgresql"
    pg.execute("INSERT INTO users (id, email, password, name, role, created_at, updated_at) VALUES "
               "(gen_random_uuid(), 'apos@falha', 'x', 'y', 'BRAND', now(), now())")  # writable again
    assert pg.execute("SELECT count(*) FROM truelabel_meta.reverse_changelog").fetchone()[0] == 4  # 2 replayed
    monkeypatch.setattr(reverse, "_replay_table", original)
    report = rollback(cut_over, pg_url, redis_url)
    assert report.replayed == 4 and AppGate(redis_url=redis_url).current_primary().kind == "sqlite"
    legacy = sqlite3.connect(cut_over)
    assert legacy.execute(f"SELECT count(*) FROM qr_code_accesses WHERE id IN ({','.join('?' * 5)})",
                          scans).fetchone()[0] == 5
    assert legacy.execute("SELECT count(*) FROM users WHERE email = 'apos@falha'").fetchone()[0] == 1
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="not the primary"):
        pg.execute("INSERT INTO qr_code_access (id, qr_code, accessed_at) VALUES (gen_random_uuid(), 'X', now())")


def test_the_fence_is_not_lifted_by_hand_while_postgres_is_the_primary(cut_over: Path, pg_url: str) -> None:
    shown = run_cli("fence", "remove", "--source", str(cut_over), "--target", pg_url)
    assert shown.code == ExitCode.NOT_PRIMARY and "split" in shown.stderr
    assert fence_installed(cut_over)


def test_capture_remove_leaves_the_fence_in_place(cut_over: Path) -> None:
    assert fence_installed(cut_over)
    remove_capture(cut_over)
    assert fence_installed(cut_over)
    assert capture_status(cut_over).triggers == 0
    with pytest.raises(sqlite3.IntegrityError, match="no longer the primary"):
        sqlite3.connect(cut_over).execute("UPDATE users SET name = 'x'")


def test_rollback_when_sqlite_is_the_primary_is_refused(
        tmp_path: Path, pg_url: str, redis_url: str) -> None:
    legacy = tmp_path / "live.db"
    generate(legacy, 0.01, seed=34)
    install_capture(legacy)
    run_copy(legacy, pg_url, CopyOptions(work_dir=tmp_path / "w"))
    shown = run_cli("rollback", "--source", str(legacy), "--target", pg_url, "--redis", redis_url)
    assert shown.code == ExitCode.NOT_PRIMARY and "nothing to roll back" in shown.stderr

