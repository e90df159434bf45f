"""Operator hooks (the lag alert, the switch command, backup notifications): run without a shell
and without our secrets, reaped, and never fatal to the process that runs them."""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.fix_legacy import NOW_MS, insert
from truelabel_db.capture import install_capture
from truelabel_db.catalog.changelog import CHANGELOG_TABLE
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.errors import SourceLockedError
from truelabel_db.follow import Follower, FollowOptions
from truelabel_db.hooks import BackgroundHook, describe_hook, run_hook, scrubbed_environment
from truelabel_db.legacy.generator import generate

SECRETS = {
    "TRUELABEL_BACKUP_KEY": "c2VjcmV0LWtleS1ieXRlcw==",
    "TRUELABEL_SERVICE_API_KEY": "tl-api-key",
    "TRUELABEL_APP_PASSWORD": "app-password",
    "PGPASSWORD": "pg-password",
    "TRUELABEL_TARGET_URL": "postgresql://migrator:url-password@db.internal:5432/truelabel",
    "DATABASE_URL": "postgres://app:other-password@db/app",
    "CACHE_URL": "redis://:redis-password@cache:6379/0",
    "LEGACY_DSN": "host=db user=app password=dsn-password",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "AWS_SESSION_TOKEN": "aws-token",
    "TRUELABEL_NOTIFY_WEBHOOK": "https://hooks.example.com/services/T0/B0/webhook-token",
}
HARMLESS = {
    "TRUELABEL_REDIS_URL": "redis://127.0.0.1:6379/0",
    "TRUELABEL_BUSY_TIMEOUT_MS": "5000",
    "AWS_REGION": "sa-east-1",
}


def wait_for(predicate: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def process_state(pid: int) -> str | None:
    """'Z' for a zombie (exited, never reaped), another letter while it lives, None once reaped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    return next(line.split()[1] for line in status.splitlines() if line.startswith("State:"))


def recorder(folder: Path) -> str:
    """A hook command that writes its pid, environment and standard input to ``folder/seen.json``."""
    script = folder / "record.py"
    script.write_text("import json, os, sys\n"
                      f"doc = {{'pid': os.getpid(), 'env': dict(os.environ), 'stdin': sys.stdin.read()}}\n"
                      f"open({str(folder / 'seen.part')!r}, 'w').write(json.dumps(doc))\n"
                      f"os.replace({str(folder / 'seen.part')!r}, {str(folder / 'seen.json')!r})\n")
    return f"{sys.executable} {script}"


def seen(folder: Path) -> dict[str, object]:
    wait_for(lambda: (folder / "seen.json").exists())
    return json.loads((folder / "seen.json").read_text())


def test_a_hook_sees_none_of_our_secrets_and_the_rest_of_our_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**SECRETS, **HARMLESS}.items():
        monkeypatch.setenv(name, value)
    result = run_hook(recorder(tmp_path), {"event": "test"}, env={"TRUELABEL_STATUS": "success"})
    assert result.ok, result.detail
    doc = seen(tmp_path)
    env = doc["env"]
    assert isinstance(env, dict)
    assert not set(SECRETS) & set(env)
    assert not any(value in json.dumps(env) for value in SECRETS.values())
    assert {k: env[k] for k in HARMLESS} == HARMLESS and env["TRUELABEL_STATUS"] == "success"
    assert "PATH" in env and json.loads(str(doc["stdin"])) == {"event": "test"}


def test_an_operator_may_hand_a_hook_a_named_secret_on_purpose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOY_TOKEN", "for-the-switch-script")
    monkeypatch.setenv("PGPASSWORD", "pg-password")
    assert "DEPLOY_TOKEN" not in scrubbed_environment()
    monkeypatch.setenv("TRUELABEL_HOOK_ENV", "DEPLOY_TOKEN")
    env = scrubbed_environment()
    assert env["DEPLOY_TOKEN"] == "for-the-switch-script" and "PGPASSWORD" not in env


@pytest.mark.parametrize("spec, detail", [
    ("/nonexistent/truelabel-alert --now", "could not start"),
    ("alert 'unbalanced", "cannot be split"),
    ("", "is empty"),
    (f"{sys.executable} -c \"import sys; print('disk full', file=sys.stderr); sys.exit(3)\"", "exited 3: disk full"),
])
def test_a_hook_that_fails_is_a_result_that_says_how_never_an_exception(spec: str, detail: str) -> None:
    result = run_hook(spec, {"event": "test"})
    assert not result.ok and detail in result.detail


def test_a_hook_that_hangs_is_killed_with_what_it_started_and_reaped(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    spec = f"sh -c 'sleep 300 & echo $$ $! > {pids}; wait'"
    result = run_hook(spec, timeout=1.0)
    assert not result.ok and "did not finish within 1 s" in result.detail
    hook, grandchild = (int(p) for p in pids.read_text().split())
    assert process_state(hook) is None  # reaped by us
    wait_for(lambda: process_state(grandchild) in (None, "Z"))  # killed (its new parent reaps it)


def test_a_dead_webhook_is_a_result_that_names_its_host_only() -> None:
    spec = "http://127.0.0.1:1/services/T0/B0/secret-token?key=abc"
    result = run_hook(spec, {"event": "test"}, timeout=2)
    assert not result.ok and "unreachable" in result.detail
    assert describe_hook(spec) == "http://127.0.0.1" and "secret-token" not in result.detail


def test_a_background_hook_returns_at_once_and_its_process_is_reaped(tmp_path: Path) -> None:
    failures: list[str] = []
    hook = BackgroundHook(recorder(tmp_path), "test alert", report=failures.append)
    assert hook.fire({"event": "lag"})
    pid = int(str(seen(tmp_path)["pid"]))
    wait_for(lambda: process_state(pid) is None)
    hook.close()
    assert failures == []
    broken = BackgroundHook("/nonexistent/alert", "lag alert", report=failures.append)
    broken.fire({"event": "lag"})
    broken.close()
    assert failures == ["lag alert /nonexistent/alert could not start: No such file or directory"]


def test_hung_background_hooks_are_bounded_not_piled_up() -> None:
    failures: list[str] = []
    hook = BackgroundHook("sleep 30", "lag alert", timeout=1, max_running=2, report=failures.append)
    assert hook.fire({}) and hook.fire({})
    assert not hook.fire({})
    hook.close()
    assert failures[0] == "lag alert sleep skipped: 2 earlier runs have not finished"
    assert failures[1:] == ["lag alert sleep did not finish within 1 s and was killed"] * 2


# -- the follower ------------------------------------------------------------------------------

@pytest.fixture
def lagging(tmp_path: Path, pg_url: str) -> Path:
    """A followed legacy file with 20 changes a minute old waiting in its changelog."""
    path = tmp_path / "live.db"
    generate(path, 0.01, seed=5)
    install_capture(path)
    run_copy(path, pg_url, CopyOptions(work_dir=tmp_path / "w", workers=2))
    app = sqlite3.connect(path)
    for i in range(20):
        insert(app, "qr_code_accesses", accessedAt=NOW_MS + i)
    app.execute(f"UPDATE {CHANGELOG_TABLE} SET at = at - 60000")
    app.commit()
    app.close()
    return path


def _applied(pg_url: str) -> int:
    with psycopg.connect(pg_url) as conn:
        return int(conn.execute("SELECT position FROM truelabel_meta.follow_state").fetchone()[0])


def _changelog_end(path: Path) -> int:
    return int(sqlite3.connect(path).execute(f"SELECT max(seq) FROM {CHANGELOG_TABLE}").fetchone()[0])


def test_an_on_lag_command_that_cannot_start_is_logged_and_the_follower_goes_on(
        lagging: Path, pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    follower = Follower(lagging, pg_url, FollowOptions(batch_size=5, lag_threshold_ms=1000,
                                                       on_lag="/nonexistent/truelabel-alert"))
    with caplog.at_level(logging.WARNING, logger="truelabel_db.hooks"):
        stats = follower.run(until_caught_up=True)
        follower.close()
    assert stats.alerts == 1 and _applied(pg_url) == _changelog_end(lagging)
    assert any("could not start" in r.getMessage() for r in caplog.records)


def test_the_on_lag_hook_gets_no_secret_and_is_reaped(lagging: Path, pg_url: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    folder = tmp_path / "hook"
    folder.mkdir()
    follower = Follower(lagging, pg_url, FollowOptions(batch_size=5, lag_threshold_ms=1000,
                                                       on_lag=recorder(folder)))
    follower.run(until_caught_up=True)
    doc = seen(folder)
    env = doc["env"]
    assert isinstance(env, dict) and not set(SECRETS) & set(env)
    assert int(env["TRUELABEL_LAG_MS"]) > 1000
    wait_for(lambda: process_state(int(str(doc["pid"]))) is None)  # not left a zombie
    follower.close()


def test_lag_measuring_on_a_locked_file_is_a_retry_not_a_crash(lagging: Path, pg_url: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUELABEL_BUSY_TIMEOUT_MS", "50")
    follower = Follower(lagging, pg_url, FollowOptions(batch_size=5, max_backoff=0.2))
    follower.stats.position = follower.start_position()
    app = sqlite3.connect(lagging, isolation_level=None, check_same_thread=False)
    app.execute("BEGIN EXCLUSIVE")  # a writer committing: readers of a rollback-journal file wait
    try:
        with pytest.raises(SourceLockedError):  # what the run loop backs off from and retries
            follower._measure_lag(None)
    finally:
        app.execute("ROLLBACK")
    app.execute("BEGIN EXCLUSIVE")
    try:
        import threading

        threading.Timer(0.5, lambda: app.execute("ROLLBACK")).start()
        stats = follower.run(until_caught_up=True)
    finally:
        wait_for(lambda: not app.in_transaction)
        app.close()
        follower.close()
    assert stats.retries >= 1 and _applied(pg_url) == _changelog_end(lagging)


# -- the cutover's switch command ----------------------------------------------------------------

@pytest.fixture
def followed(lagging: Path, pg_url: str, redis_url: str) -> Path:
    from truelabel_db.cutover.gate import Gate, connect_redis

    Gate(connect_redis(redis_url)).publish_primary("sqlite", str(lagging))
    follower = Follower(lagging, pg_url)
    follower.run(until_caught_up=True)
    follower.close()
    return lagging


def test_a_switch_command_that_cannot_start_undoes_the_cutover_with_one_clear_error(
        followed: Path, pg_url: str, redis_url: str) -> None:
    from truelabel_db.client import AppGate
    from truelabel_db.cutover.fence import fence_installed
    from truelabel_db.cutover.run import CutoverError, CutoverOptions, cutover

    with pytest.raises(CutoverError, match="undone.*switch command could not start"):
        cutover(followed, pg_url, CutoverOptions(redis_url=redis_url, switch_cmd="/nonexistent/use-postgres"))
    app = AppGate(redis_url=redis_url)
    assert app.current_primary().kind == "sqlite" and not app.is_read_only() and not fence_installed(followed)


def test_the_switch_command_gets_no_secret(followed: Path, pg_url: str, redis_url: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from truelabel_db.cutover.run import CutoverOptions, cutover

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    folder = tmp_path / "switch"
    folder.mkdir()
    report = cutover(followed, pg_url, CutoverOptions(redis_url=redis_url, switch_cmd=recorder(folder)))
    env = seen(folder)["env"]
    assert report.switched and isinstance(env, dict) and not set(SECRETS) & set(env)
