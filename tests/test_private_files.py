"""Production copies on disk are private to their owner, gone when no longer needed, and key
files that others can read are refused."""

from __future__ import annotations

import base64
import secrets
import sqlite3
import stat
from pathlib import Path

import psycopg
import pytest

from tests.fix_cli import run_cli
from truelabel_db.backup.errors import BackupKeyError
from truelabel_db.backup.keys import load_key
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.errors import ExitCode
from truelabel_db.legacy.generator import generate
from truelabel_db.legacy.source import take_snapshot


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def key_file(folder: Path, permissions: int) -> Path:
    path = folder / "backup.key"
    path.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
    path.chmod(permissions)
    return path


def test_a_snapshot_is_created_readable_by_its_owner_only_in_a_private_folder(real_legacy: Path,
                                                                             tmp_path: Path) -> None:
    snapshot = tmp_path / "work" / "snapshots" / "legacy.db"
    take_snapshot(real_legacy, snapshot)
    assert mode(snapshot) == 0o600
    assert mode(snapshot.parent) == 0o700 and mode(snapshot.parent.parent) == 0o700


def test_a_snapshot_the_copy_keeps_is_private(real_legacy: Path, pg_url: str, tmp_path: Path) -> None:
    run_copy(real_legacy, pg_url, CopyOptions(work_dir=tmp_path / "copy", workers=2, keep_snapshot=True))
    [snapshot] = (tmp_path / "copy").glob("snapshot-*.db")
    assert mode(snapshot) == 0o600 and mode(tmp_path / "copy") == 0o700


def test_a_finished_copy_of_a_wal_mode_file_leaves_no_snapshot_nor_its_wal_behind(tmp_path: Path,
                                                                                  pg_url: str) -> None:
    legacy = tmp_path / "prod.db"
    generate(legacy, 0.005, seed=3)
    sqlite3.connect(legacy).execute("PRAGMA journal_mode = WAL").connection.close()
    run_copy(legacy, pg_url, CopyOptions(work_dir=tmp_path / "copy", workers=2))
    assert list((tmp_path / "copy").iterdir()) == []


def test_the_snapshot_of_an_abandoned_copy_run_is_deleted_by_the_run_that_replaces_it(
        real_legacy: Path, pg_url: str, tmp_path: Path) -> None:
    work = tmp_path / "copy"
    run_copy(real_legacy, pg_url, CopyOptions(work_dir=work, workers=2))
    with psycopg.connect(pg_url, autocommit=True) as conn:  # a run that died before finishing
        conn.execute("UPDATE truelabel_meta.copy_runs SET status = 'running'")
        snapshot = Path(conn.execute("SELECT snapshot_path FROM truelabel_meta.copy_runs").fetchone()[0])
    take_snapshot(real_legacy, snapshot)  # its snapshot, still on disk
    run_copy(real_legacy, pg_url, CopyOptions(work_dir=work, workers=2, truncate=True))
    assert not snapshot.exists()
    assert list(work.glob("snapshot-*")) == []
    assert real_legacy.exists()


def test_an_in_place_run_replaced_by_a_new_one_never_deletes_the_legacy_file(
        tmp_path: Path, pg_url: str) -> None:
    legacy = tmp_path / "prod.db"
    generate(legacy, 0.005, seed=3)
    run_copy(legacy, pg_url, CopyOptions(work_dir=tmp_path / "copy", workers=2, in_place=True))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE truelabel_meta.copy_runs SET status = 'running'")
    run_copy(legacy, pg_url, CopyOptions(work_dir=tmp_path / "copy", workers=2, truncate=True))
    assert legacy.exists()


def test_migrate_encrypts_its_legacy_backup_into_the_repository_and_leaves_no_plain_copy(
        real_legacy: Path, backup_key: bytes, repo_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from truelabel_db.backup import open_storage
    from truelabel_db.backup.legacy import restore_legacy, sqlite_row_counts
    from truelabel_db.migrate import MigrateOptions, _Migration

    monkeypatch.setenv("TRUELABEL_BACKUP_REPO", str(repo_dir))
    work = tmp_path / "m"
    step = _Migration(real_legacy, "postgresql://unused", MigrateOptions(redis_url="redis://unused", work_dir=work),
                      lambda _: None)
    detail = step.step_backup()
    assert "path" not in detail and detail["encrypted"] is True
    leftovers = [p for p in work.rglob("*") if p.is_file()] if work.exists() else []
    assert leftovers == []
    restored = restore_legacy(open_storage(str(repo_dir)), detail["backup_id"], tmp_path / "back.db", backup_key)
    assert restored.row_counts == sqlite_row_counts(real_legacy) and not restored.mismatches
    assert mode(tmp_path / "back.db") == 0o600


def test_without_a_repository_migrate_keeps_a_plain_backup_private_to_its_owner(
        real_legacy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from truelabel_db.migrate import MigrateOptions, _Migration

    monkeypatch.delenv("TRUELABEL_BACKUP_REPO", raising=False)
    said: list[str] = []
    step = _Migration(real_legacy, "postgresql://unused",
                      MigrateOptions(redis_url="redis://unused", work_dir=tmp_path / "m"), said.append)
    detail = step.step_backup()
    backup = Path(detail["path"])
    assert detail["encrypted"] is False and mode(backup) == 0o600 and mode(backup.parent) == 0o700
    assert any("not encrypted" in line for line in said)


@pytest.mark.parametrize("permissions", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_others_can_read_is_refused_like_ssh_does(permissions: int, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRUELABEL_BACKUP_KEY", raising=False)
    path = key_file(tmp_path, permissions)
    with pytest.raises(BackupKeyError, match=f"mode {permissions:04o}.*chmod 600"):
        load_key(path)
    monkeypatch.setenv("TRUELABEL_BACKUP_KEY_FILE", str(path))
    with pytest.raises(BackupKeyError, match="can be read by other users"):
        load_key()


def test_a_key_file_readable_by_its_owner_only_is_accepted(tmp_path: Path) -> None:
    path = key_file(tmp_path, 0o600)
    assert len(load_key(path)) == 32
    path.chmod(0o400)
    assert len(load_key(path)) == 32


def test_the_command_line_refuses_an_open_key_file_with_one_line_and_the_key_exit_code(tmp_path: Path) -> None:
    path = key_file(tmp_path, 0o644)
    result = run_cli("backup", "run", "--kind", "sqlite", "--source", str(tmp_path / "any.db"),
                     "--to", str(tmp_path / "repo"), "--key-file", str(path), env={"TRUELABEL_BACKUP_KEY": ""})
    assert result.code == ExitCode.BACKUP_KEY
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "chmod 600" in lines[0] and "Traceback" not in result.stderr
