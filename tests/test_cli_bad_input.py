"""Bad input: one clear line, a non-zero exit, no traceback, nothing half-done."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests.fix_cli import CliResult, run_cli
from truelabel_db import postgres as connection
from truelabel_db.errors import TargetError


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    assert result.code != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_a_missing_source_file(tmp_path: Path, pg_url: str) -> None:
    result = run_cli("copy", "--source", str(tmp_path / "nope.db"), "--target", pg_url)
    assert_one_line_error(result, "not found", "nope.db")


def test_a_file_that_is_not_sqlite(tmp_path: Path, pg_url: str) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are not the tables you are looking for")
    assert_one_line_error(run_cli("copy", "--source", str(path), "--target", pg_url), "not a SQLite database")
    assert_one_line_error(run_cli("analyze", str(path)), "not a SQLite database")


def test_a_corrupt_database(real_legacy: Path, tmp_path: Path, pg_url: str) -> None:
    data = bytearray(real_legacy.read_bytes())
    data[4096:4096 * 3] = b"\xde\xad\xbe\xef" * 2048
    broken = tmp_path / "broken.db"
    broken.write_bytes(bytes(data))
    result = run_cli("copy", "--source", str(broken), "--target", pg_url, "--work-dir", str(tmp_path / "w"))
    assert_one_line_error(result, "corrupt")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM truelabel_meta.copy_runs").fetchone()[0] == 0


def test_a_sqlite_file_that_is_not_true_labels(tmp_path: Path, pg_url: str) -> None:
    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    assert_one_line_error(run_cli("copy", "--source", str(path), "--target", pg_url),
                          "not a True Label database", "users")


def test_a_database_locked_by_another_process(real_legacy: Path, pg_url: str, tmp_path: Path) -> None:
    holder = sqlite3.connect(real_legacy, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = run_cli("copy", "--source", str(real_legacy), "--target", pg_url,
                         "--work-dir", str(tmp_path / "w"), env={"TRUELABEL_BUSY_TIMEOUT_MS": "300"})
    finally:
        holder.rollback()
        holder.close()
    assert_one_line_error(result, "locked")
    assert result.code == 3
    rerun = run_cli("copy", "--source", str(real_legacy), "--target", pg_url, "--work-dir", str(tmp_path / "w"))
    assert rerun.code == 0, rerun.stderr


def test_an_unreachable_target(real_legacy: Path) -> None:
    result = run_cli("copy", "--source", str(real_legacy), "--target", "postgresql://postgres@127.0.0.1:1/x")
    assert_one_line_error(result, "cannot connect to PostgreSQL", "127.0.0.1:1")


def test_a_malformed_target_url_never_echoes_a_password(real_legacy: Path) -> None:
    result = run_cli("copy", "--source", str(real_legacy), "--target", "postgresql://u:s3cret@[nonsense")
    assert result.code != 0 and "Traceback" not in result.stderr
    assert "s3cret" not in result.stderr


def test_a_wrong_password_is_not_echoed(real_legacy: Path) -> None:
    result = run_cli("copy", "--source", str(real_legacy),
                     "--target", "postgresql://nobody_here:s3cret@127.0.0.1:5432/postgres")
    assert_one_line_error(result, "cannot connect")
    assert "s3cret" not in result.stderr


def test_no_target_at_all(real_legacy: Path) -> None:
    assert_one_line_error(run_cli("copy", "--source", str(real_legacy)), "TRUELABEL_TARGET_URL")


def test_a_server_older_than_supported_is_refused(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "MIN_SERVER_VERSION", 990000)
    with pytest.raises(TargetError, match="needs 13 or newer"):
        connection.connect(pg_url)


def test_the_target_url_may_come_from_the_environment(real_legacy: Path, pg_url: str, tmp_path: Path) -> None:
    result = run_cli("copy", "--source", str(real_legacy), "--work-dir", str(tmp_path / "w"), "--json",
                     env={"TRUELABEL_TARGET_URL": pg_url})
    assert result.code == 0, result.stderr
    import json

    doc = json.loads(result.stdout)
    assert doc["totals"]["read"] == doc["totals"]["written"] == 8
    assert set(doc["tables"]["users"]) >= {"read", "written", "quarantined"}


def test_schema_apply_twice_is_harmless(pg_url: str) -> None:
    first = run_cli("schema", "apply", "--target", pg_url, "--json")
    second = run_cli("schema", "apply", "--target", pg_url, "--json")
    assert first.code == second.code == 0, first.stderr + second.stderr
    assert first.stdout == second.stdout


def test_a_target_no_copy_went_into_is_named_as_such_by_every_stage(real_legacy: Path, pg_url: str) -> None:
    """A wrong --target (an empty database) is the commonest slip: before, each stage printed an
    "internal error (UndefinedTable)", and the follower retried it for ever."""
    for args in (("verify", "--source", str(real_legacy)), ("cutover", "--source", str(real_legacy)),
                 ("follow", "--source", str(real_legacy)), ("quarantine", "redrive")):
        result = run_cli(*args, "--target", pg_url, timeout=60)
        assert_one_line_error(result, "holds no migration", "check --target")
        assert result.code == 4, result.stderr
    for args in (("quarantine", "list"), ("quarantine", "fix", "1", "a=1")):
        result = run_cli(*args, "--target", pg_url, timeout=60)
        assert_one_line_error(result, "lacks truelabel-db's catalog", "check --target")
        assert result.code == 4, result.stderr


def test_serve_refuses_a_database_that_is_not_true_labels(tmp_path: Path, pg_url: str) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE notes (id INTEGER PRIMARY KEY)").connection.commit()
    assert_one_line_error(run_cli("serve", "--database", str(other), "--port", "0", timeout=60),
                          "not a True Label database", "products")  # before: served, every answer a 500
    assert_one_line_error(run_cli("serve", "--database", pg_url, "--port", "0", timeout=60),
                          "holds no True Label schema", "products")


def test_roles_before_the_schema_says_to_apply_it(pg_url: str) -> None:
    assert_one_line_error(run_cli("schema", "roles", "--target", pg_url), "schema apply")


def test_a_read_only_target_is_named_as_such(real_legacy: Path, pg_url: str, tmp_path: Path) -> None:
    read_only = make_conninfo(pg_url, options="-c default_transaction_read_only=on")  # as a standby would be
    result = run_cli("copy", "--source", str(real_legacy), "--target", read_only, "--work-dir", str(tmp_path / "w"))
    assert_one_line_error(result, "the target is read-only", "point --target at the primary")  # before: internal error
    assert result.code == 4


def test_a_role_without_the_privileges_is_named_as_such(real_legacy: Path, pg_url: str, tmp_path: Path) -> None:
    copied = run_cli("copy", "--source", str(real_legacy), "--target", pg_url, "--work-dir", str(tmp_path / "w"))
    assert copied.code == 0, copied.stderr
    role = f"tl_nobody_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        result = run_cli("verify", "--source", str(real_legacy), "--target", make_conninfo(pg_url, user=role))
        assert_one_line_error(result, "PostgreSQL refused a privilege", "permission denied")  # before: internal error
        assert result.code == 4
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.mark.parametrize("args, named", [
    (("serve", "--port", "99999"), "--port"),          # before: "serving on http://127.0.0.1:99999"
    (("serve", "--workers", "0"), "--workers"),         # before: "0 worker(s)"
    (("bench", "limits", "--admits", "0"), "--admits"),  # before: internal error (ZeroDivisionError)
    (("follow", "--source", "x.db", "--batch-size", "-5"), "--batch-size"),
    (("backup", "prune", "--keep-at-least", "0"), "--keep-at-least"),  # would let a prune delete every backup
    (("workload", "x.db", "--dirt-rate", "2"), "--dirt-rate"),
    (("bench", "soak", "--minutes", "0"), "--minutes"),
    (("copy", "--workers", "abc"), "--workers"),
])
def test_an_option_out_of_its_range_is_one_line_before_anything_runs(args: tuple[str, ...], named: str) -> None:
    result = run_cli(*args, timeout=30)
    assert_one_line_error(result, "Invalid value for", named, "--help")
    assert result.code == 2


def test_a_usage_error_is_one_line_and_a_group_alone_still_shows_its_help() -> None:
    assert_one_line_error(run_cli("copy"), "Missing option '--source'", "copy --help")  # before: a box
    alone = run_cli("cache")
    shown = alone.stderr + alone.stdout
    assert alone.code == 2 and shown.count("Usage:") == 1 and "invalidate" in shown
    assert run_cli("--help").code == 0


def test_the_cli_runs_without_click_installed(tmp_path: Path) -> None:
    """The core install has Typer (which carries its own Click now) but not Click itself, which
    only the serve extra brings: the entry point must not need it."""
    code = ("import sys; sys.modules['click'] = None\n"   # as if it were not installed
            "sys.argv = ['truelabel-db', 'copy']\nfrom truelabel_db.cli.app import main\nmain()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    result = CliResult(done.returncode, done.stdout, done.stderr)   # before: ModuleNotFoundError
    assert_one_line_error(result, "Missing option '--source'")
    assert result.code == 2
