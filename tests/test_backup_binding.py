"""A backup's manifest and its verification record belong to one backup folder: moved or copied
into another, or forged without the key, they are refused by restore, verify, list and the drill."""

from __future__ import annotations

import base64
import json
import shutil
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from tests.fix_backup import table_digests
from tests.fix_cli import run_cli
from tests.fix_db import ADMIN_URL
from truelabel_db.backup import BackupOptions, open_storage, restore_backup, run_backup
from truelabel_db.backup.database import sibling_url
from truelabel_db.backup.errors import BackupIntegrityError
from truelabel_db.backup.legacy import backup_legacy
from truelabel_db.backup.manifest import MANIFEST, VERIFICATION, utc_now
from truelabel_db.backup.repository import latest_complete, list_backups, load_verification
from truelabel_db.backup.retention import RetentionPolicy, plan_prune
from truelabel_db.backup.storage import Storage
from truelabel_db.backup.verify import verify_backup
from truelabel_db.dr.drill import DrillFailed, run_drill
from truelabel_db.errors import ExitCode


def key_env(key: bytes) -> dict[str, str]:
    return {"TRUELABEL_BACKUP_KEY": base64.b64encode(key).decode()}


def plant(repo: Path, source_id: str, target_id: str, *names: str) -> None:
    """What someone with write access to the repository (and no key) can do: copy files across."""
    for name in names:
        source, target = repo / source_id / name, repo / target_id / name
        if source.is_dir():
            shutil.rmtree(target)
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)


def test_an_older_manifest_copied_into_a_newer_backup_is_refused_never_restored_as_it(
        app_db: str, backup_key: bytes, repo_dir: Path, scratch_db_name: str) -> None:
    storage = open_storage(str(repo_dir), create=True)
    older = run_backup(app_db, storage, backup_key, BackupOptions(jobs=2))
    with psycopg.connect(app_db, autocommit=True) as conn:
        conn.execute("DELETE FROM validations")
    newer = run_backup(app_db, storage, backup_key, BackupOptions(jobs=2))
    plant(repo_dir, older.id, newer.id, MANIFEST, "files")

    target = sibling_url(app_db, scratch_db_name)
    with pytest.raises(BackupIntegrityError, match=f"backup {newer.id}: its manifest belongs to backup {older.id}"):
        restore_backup(storage, newer.id, target, backup_key, jobs=2)
    with pytest.raises(BackupIntegrityError, match="belongs to backup"):
        verify_backup(storage, newer.id, backup_key, ADMIN_URL)
    with pytest.raises(BackupIntegrityError, match=f"newer backup {newer.id} fails its checks"):
        latest_complete(storage)  # `backup verify` and the drill start from the newest: not the older one
    with pytest.raises(DrillFailed, match="validate backup"):
        run_drill(app_db, storage, backup_key, jobs=2)
    listed = {b.id: b for b in list_backups(storage)}
    assert listed[older.id].problem is None and "belongs to backup" in str(listed[newer.id].problem)

    result = restore_backup(storage, older.id, target, backup_key, jobs=2)  # the older one is intact
    assert result.ok and table_digests(target)["public.validations"][0] > 0


def test_the_list_command_names_a_misplaced_manifest_and_fails_with_the_integrity_exit_code(
        real_legacy: Path, backup_key: bytes, repo_dir: Path) -> None:
    storage = open_storage(str(repo_dir), create=True)
    older = backup_legacy(real_legacy, storage, backup_key)
    newer = backup_legacy(real_legacy, storage, backup_key)
    plant(repo_dir, older.id, newer.id, MANIFEST)
    for env in ({}, key_env(backup_key)):  # the ids are checked without the key too
        result = run_cli("backup", "list", "--to", str(repo_dir), env=env)
        assert result.code == ExitCode.BACKUP_INTEGRITY, result.stderr
        assert f"{newer.id}: its manifest belongs to backup {older.id}" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_forged_verification_record_is_refused(real_legacy: Path, backup_key: bytes, repo_dir: Path) -> None:
    storage = open_storage(str(repo_dir), create=True)
    manifest = backup_legacy(real_legacy, storage, backup_key)
    forged = {"backup_id": manifest.id, "verified_at": utc_now().isoformat(), "ok": True,
              "detail": "restored; every table's rows match the manifest", "seconds": 1.0, "mismatched_tables": {}}
    (repo_dir / manifest.id / VERIFICATION).write_text(json.dumps(forged))

    with pytest.raises(BackupIntegrityError, match=f"verification record of backup {manifest.id} is not sealed"):
        load_verification(storage, manifest.id, manifest, backup_key)
    [listing] = list_backups(storage, backup_key)
    assert listing.verification is None and "not sealed" in str(listing.problem)
    result = run_cli("backup", "list", "--to", str(repo_dir), "--json", env=key_env(backup_key))
    assert result.code == ExitCode.BACKUP_INTEGRITY and "not sealed" in result.stderr
    assert json.loads(result.stdout)[0]["verified"] is None


def test_a_verification_record_copied_from_another_backup_is_refused(real_legacy: Path, backup_key: bytes,
                                                                      repo_dir: Path) -> None:
    storage = open_storage(str(repo_dir), create=True)
    verified = backup_legacy(real_legacy, storage, backup_key)
    other = backup_legacy(real_legacy, storage, backup_key)
    assert verify_backup(storage, verified.id, backup_key, None).ok
    plant(repo_dir, verified.id, other.id, VERIFICATION)
    with pytest.raises(BackupIntegrityError, match=f"belongs to backup {verified.id}"):
        load_verification(storage, other.id)  # caught from the id alone, without the key
    listed = {b.id: b for b in list_backups(storage, backup_key)}
    assert listed[verified.id].problem is None and listed[verified.id].verification is not None
    assert "belongs to backup" in str(listed[other.id].problem)


def test_a_genuine_verification_is_sealed_and_listed_as_checked_only_with_the_key(
        real_legacy: Path, backup_key: bytes, repo_dir: Path) -> None:
    storage = open_storage(str(repo_dir), create=True)
    manifest = backup_legacy(real_legacy, storage, backup_key)
    record = verify_backup(storage, manifest.id, backup_key, None)
    assert record.mac and record.manifest_mac == manifest.mac
    stored = load_verification(storage, manifest.id, manifest, backup_key)
    assert stored is not None and stored.ok
    [with_key] = list_backups(storage, backup_key)
    [without] = list_backups(storage)
    assert with_key.to_dict()["verified"] == {"ok": True, "at": record.verified_at, "detail": record.detail,
                                              "sealed": True}
    assert without.to_dict()["verified"]["sealed"] is None  # not checked: no key given
    listed = run_cli("backup", "list", "--to", str(repo_dir), env=key_env(backup_key))
    assert listed.code == 0 and "ok" in listed.stderr


def test_a_backup_that_fails_its_checks_is_never_pruned_and_protects_nothing(
        real_legacy: Path, backup_key: bytes, repo_dir: Path) -> None:
    storage: Storage = open_storage(str(repo_dir), create=True)
    older = backup_legacy(real_legacy, storage, backup_key)
    newer = backup_legacy(real_legacy, storage, backup_key)
    plant(repo_dir, older.id, newer.id, MANIFEST)
    plan = plan_prune(list_backups(storage), RetentionPolicy(keep_days=1, keep_at_least=1),
                      utc_now() + timedelta(days=30))
    assert newer.id in plan.keep and "fails its checks" in plan.reasons[newer.id]
    assert older.id in plan.keep and "newest" in plan.reasons[older.id]
