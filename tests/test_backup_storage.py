"""One storage contract, run against a local folder and against an S3-compatible server."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.fix_backup import table_digests
from truelabel_db.backup import BackupOptions, open_storage, restore_backup, run_backup
from truelabel_db.backup.database import sibling_url
from truelabel_db.backup.errors import BackupError
from truelabel_db.backup.manifest import MANIFEST, Manifest
from truelabel_db.backup.retention import RetentionPolicy, prune
from truelabel_db.backup.storage import Storage


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return open_storage(str(tmp_path / "repo"), create=True)
    return open_storage(request.getfixturevalue("s3_repo"))


def test_objects_round_trip_and_list_as_backups(storage: Storage, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 << 20))  # above boto3's multipart threshold
    expected = big.read_bytes()
    storage.put_file(big, "full-20261101T000000Z/files/toc.dat.enc")
    storage.put_bytes("full-20261101T000000Z/manifest.json", b"{}")
    storage.put_bytes("full-20261102T000000Z/manifest.json", b"{}")
    storage.get_file("full-20261101T000000Z/files/toc.dat.enc", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == expected
    assert storage.get_bytes("full-20261102T000000Z/manifest.json") == b"{}"
    storage.put_bytes("wal/000000010000000000000001", b"not a backup")  # e.g. a PITR archive beside them
    assert storage.list_ids() == ["full-20261101T000000Z", "full-20261102T000000Z"]
    assert storage.exists("full-20261101T000000Z/manifest.json")
    assert not storage.exists("full-20261101T000000Z/verification.json")
    storage.delete_backup("full-20261101T000000Z")
    assert storage.list_ids() == ["full-20261102T000000Z"]


def test_a_missing_object_is_one_clear_error(storage: Storage, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="missing"):
        storage.get_file("full-x/files/nope.enc", tmp_path / "x")
    with pytest.raises(BackupError, match="missing"):
        storage.get_bytes("full-x/manifest.json")


def _fake_backup(storage: Storage, key: bytes, kind: str, age_days: int) -> str:
    created = datetime.now(timezone.utc) - timedelta(days=age_days)
    backup_id = f"{kind}-{created.strftime('%Y%m%dT%H%M%SZ')}"
    manifest = Manifest(backup_id, kind, created.isoformat(), "test", "id")
    manifest.seal(key)
    storage.put_bytes(f"{backup_id}/files/toc.dat.enc", b"x")
    storage.put_bytes(f"{backup_id}/{MANIFEST}", manifest.to_json())
    return backup_id


def test_prune_keeps_four_weeks_and_always_the_newest(storage: Storage, backup_key: bytes) -> None:
    old = _fake_backup(storage, backup_key, "full", 40)
    recent = _fake_backup(storage, backup_key, "full", 3)
    old_sqlite = _fake_backup(storage, backup_key, "sqlite", 60)  # the only one of its kind: kept
    stale_partial = "full-20200101T000000Z"
    storage.put_bytes(f"{stale_partial}/files/toc.dat.enc", b"x")

    plan = prune(storage, RetentionPolicy(keep_days=28), dry_run=True)
    assert sorted(plan.delete) == sorted([old, stale_partial])
    assert storage.list_ids() == sorted([old, recent, old_sqlite, stale_partial])  # dry run deleted nothing
    prune(storage, RetentionPolicy(keep_days=28))
    assert storage.list_ids() == sorted([recent, old_sqlite])


@pytest.mark.slow
def test_a_backup_to_s3_restores_every_table(app_db: str, backup_key: bytes, s3_repo: str,
                                             scratch_db_name: str) -> None:
    storage = open_storage(s3_repo)
    manifest = run_backup(app_db, storage, backup_key, BackupOptions(jobs=2))
    target = sibling_url(app_db, scratch_db_name)
    assert restore_backup(storage, manifest.id, target, backup_key, jobs=2).ok
    assert table_digests(target) == table_digests(app_db)


def test_an_unreachable_s3_endpoint_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from truelabel_db.embedded import free_port

    monkeypatch.setenv("TRUELABEL_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(BackupError, match="reaching the bucket failed"):
        open_storage("s3://nowhere/backups").check()
