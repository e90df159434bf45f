"""The backup commands as a user runs them: results on success, one line and an exit code on failure."""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
from pathlib import Path

import pytest

from tests.fix_backup import table_digests
from tests.fix_cli import CliResult, run_cli
from truelabel_db.backup.database import sibling_url


def one_line_error(result: CliResult, *fragments: str) -> None:
    assert result.code != 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def key_env(key: bytes) -> dict[str, str]:
    return {"TRUELABEL_BACKUP_KEY": base64.b64encode(key).decode()}


@pytest.mark.slow
def test_run_list_verify_restore_through_the_command_line(app_db: str, backup_key: bytes, repo_dir: Path,
                                                          scratch_db_name: str) -> None:
    env = key_env(backup_key)
    ran = run_cli("backup", "run", "--target", app_db, "--to", str(repo_dir), "--jobs", "2", "--json", env=env)
    assert ran.code == 0, ran.stderr
    backup_id = json.loads(ran.stdout)["id"]
    assert base64.b64encode(backup_key).decode() not in ran.stdout + ran.stderr  # the key is never printed

    listed = run_cli("backup", "list", "--to", str(repo_dir), "--json")
    assert [b["id"] for b in json.loads(listed.stdout)] == [backup_id]
    verified = run_cli("backup", "verify", "--to", str(repo_dir), "--target", app_db, env=env)  # the newest
    assert verified.code == 0 and f"backup {backup_id} verified" in verified.stderr

    target = sibling_url(app_db, scratch_db_name)
    restored = run_cli("restore", backup_id, "--target", target, "--to", str(repo_dir), env=env)
    assert restored.code == 0, restored.stderr
    assert table_digests(target) == table_digests(app_db)


def test_a_wrong_key_is_one_line_and_its_own_exit_code(app_db: str, backup_key: bytes, repo_dir: Path,
                                                        scratch_db_name: str) -> None:
    ran = run_cli("backup", "run", "--target", app_db, "--to", str(repo_dir), "--json", env=key_env(backup_key))
    backup_id = json.loads(ran.stdout)["id"]
    result = run_cli("restore", backup_id, "--target", sibling_url(app_db, scratch_db_name), "--to", str(repo_dir),
                     env=key_env(secrets.token_bytes(32)))
    one_line_error(result, "wrong backup key", backup_id)
    assert result.code == 21


def test_a_key_file_works_and_a_missing_one_is_named(app_db: str, repo_dir: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "backup.key"
    key_file.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
    key_file.chmod(0o600)
    env = {"TRUELABEL_BACKUP_KEY": ""}
    assert run_cli("backup", "run", "--target", app_db, "--to", str(repo_dir), "--key-file", str(key_file),
                   env=env).code == 0
    one_line_error(run_cli("backup", "run", "--target", app_db, "--to", str(repo_dir), "--key-file",
                           str(tmp_path / "nope.key"), env=env), "cannot read the backup key file")
    one_line_error(run_cli("backup", "run", "--target", app_db, "--to", str(repo_dir), env=env), "no backup key")


@pytest.mark.parametrize("args, fragments", [
    (["backup", "list", "--to", "/nonexistent/truelabel-repo"], ["backup folder not found"]),
    (["backup", "verify", "full-nope", "--to", "{repo}"], ["unknown backup id 'full-nope'"]),
    (["restore", "full-nope", "--to", "{repo}", "--target", "postgresql://postgres@127.0.0.1:5432/postgres"],
     ["unknown backup id"]),
    (["backup", "run", "--to", "{repo}", "--target", "postgresql://postgres:s3cret@127.0.0.1:1/app"],
     ["cannot connect", "postgres@127.0.0.1:1/app"]),
    (["backup", "run", "--to", "ftp://somewhere/backups", "--target", "postgresql://127.0.0.1/app"],
     ["unsupported backup repository"]),
    (["backup", "run", "--kind", "weekly", "--to", "{repo}", "--target", "postgresql://127.0.0.1/app"],
     ["unknown backup kind"]),
    (["pitr", "restore", "--repo", "{repo}", "--target-time", "2026-11-24 10:15:00", "--data-dir", "{repo}/d"],
     ["has no UTC offset"]),
    (["pitr", "restore", "--repo", "{repo}", "--target-time", "2026-11-24 10:15:00+00", "--data-dir", "{repo}/d"],
     ["is not a PITR repository", "pitr setup"]),
    (["pitr", "basebackup", "--repo", "/nonexistent/pitr", "--target", "postgresql://127.0.0.1/app"],
     ["PITR repository not found"]),
    (["dr", "drill", "--to", "{repo}", "--target", "postgresql://postgres@127.0.0.1:5432/postgres"],
     ["no complete full backup"]),
])
def test_bad_input_is_one_line_never_a_traceback(args: list[str], fragments: list[str], backup_key: bytes,
                                                 tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    result = run_cli(*[a.replace("{repo}", str(repo)) for a in args], env=key_env(backup_key))
    one_line_error(result, *fragments)
    assert "s3cret" not in result.stderr


def test_the_legacy_file_is_backed_up_with_the_online_api_and_restored(real_legacy: Path, backup_key: bytes,
                                                                        repo_dir: Path, tmp_path: Path) -> None:
    env = key_env(backup_key)
    ran = run_cli("backup", "run", "--kind", "sqlite", "--source", str(real_legacy), "--to", str(repo_dir),
                  "--json", env=env)
    assert ran.code == 0, ran.stderr
    backup_id = json.loads(ran.stdout)["id"]
    assert backup_id.startswith("sqlite-")
    assert run_cli("backup", "verify", backup_id, "--to", str(repo_dir), env=env).code == 0
    restored = tmp_path / "restored.db"
    assert run_cli("backup", "restore-legacy", backup_id, "--to-file", str(restored), "--to", str(repo_dir),
                   env=env).code == 0
    original, copy = sqlite3.connect(real_legacy), sqlite3.connect(restored)
    for (name,) in original.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        query = f'SELECT * FROM "{name}" ORDER BY 1'
        assert original.execute(query).fetchall() == copy.execute(query).fetchall()
    one_line_error(run_cli("backup", "restore-legacy", backup_id, "--to-file", str(restored), "--to", str(repo_dir),
                           env=env), "already exists")


def test_migrate_stores_its_first_backup_in_the_repository_when_one_is_configured(
        real_legacy: Path, backup_key: bytes, repo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from truelabel_db.backup import open_storage
    from truelabel_db.backup.legacy import restore_legacy, sqlite_row_counts
    from truelabel_db.migrate import MigrateOptions, _Migration

    monkeypatch.setenv("TRUELABEL_BACKUP_REPO", str(repo_dir))
    step = _Migration(real_legacy, "postgresql://unused", MigrateOptions(redis_url="redis://unused",
                                                                         work_dir=tmp_path / "m"), lambda _: None)
    detail = step.step_backup()
    assert detail["backup_id"].startswith("sqlite-") and detail["encrypted"]
    restored = restore_legacy(open_storage(str(repo_dir)), detail["backup_id"], tmp_path / "back.db", backup_key)
    assert restored.row_counts == sqlite_row_counts(real_legacy) and not restored.mismatches


@pytest.mark.slow
def test_the_legacy_backup_is_one_consistent_moment_while_the_app_writes(real_legacy: Path, backup_key: bytes,
                                                                         repo_dir: Path) -> None:
    import threading
    import uuid

    from tests.fix_legacy import insert
    from truelabel_db.backup import open_storage
    from truelabel_db.backup.legacy import backup_legacy
    from truelabel_db.backup.verify import verify_backup

    stop, failures = threading.Event(), []

    def app_writes() -> None:
        conn = sqlite3.connect(real_legacy, timeout=10)
        try:
            while not stop.is_set():
                insert(conn, "qr_code_accesses")
                insert(conn, "analytics_events", entityId=str(uuid.uuid4()))
                conn.commit()
        except sqlite3.Error as exc:
            failures.append(exc)
        finally:
            conn.close()

    writer = threading.Thread(target=app_writes)
    writer.start()
    try:
        storage = open_storage(str(repo_dir), create=True)
        manifests = [backup_legacy(real_legacy, storage, backup_key) for _ in range(3)]
    finally:
        stop.set()
        writer.join()
    assert failures == []
    assert manifests[-1].row_counts["qr_code_accesses"] > 0  # the app did write while the backups ran
    for manifest in manifests:  # each restored file passes integrity_check and matches its own counts
        counts = manifest.row_counts
        assert counts["qr_code_accesses"] == counts["analytics_events"]  # both rows of a commit, or neither
        assert verify_backup(storage, manifest.id, backup_key, None).ok
