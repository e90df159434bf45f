"""Logical backups: restored for real, compared table by table, and refused when anything is off."""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

import psycopg
import pytest

from tests.fix_backup import table_digests
from tests.fix_db import ADMIN_URL
from truelabel_db.backup import BackupOptions, open_storage, restore_backup, run_backup
from truelabel_db.backup.database import sibling_url
from truelabel_db.backup.errors import BackupError, BackupIntegrityError, BackupKeyError
from truelabel_db.backup.manifest import MANIFEST, Manifest
from truelabel_db.backup.notify import Notifier
from truelabel_db.backup.repository import list_backups, load_verification
from truelabel_db.backup.space import require_free_space
from truelabel_db.backup.verify import verify_backup
from truelabel_db.errors import TargetError, TargetNotEmptyError


def test_backup_damage_restore_gives_back_every_table_exactly(app_db: str, backup_key: bytes, repo_dir: Path,
                                                              scratch_db_name: str) -> None:
    before = table_digests(app_db)
    storage = open_storage(str(repo_dir), create=True)
    manifest = run_backup(app_db, storage, backup_key, BackupOptions(jobs=2))
    assert manifest.row_counts["public.users"] == 10
    assert sum(manifest.row_counts.values()) > 3000
    with psycopg.connect(app_db, autocommit=True) as conn:  # the disaster
        conn.execute("DELETE FROM validations")
        conn.execute("DROP TABLE product_seals")
    assert table_digests(app_db) != before

    target = sibling_url(app_db, scratch_db_name)
    result = restore_backup(storage, manifest.id, target, backup_key, jobs=2)
    assert result.ok, result.mismatches
    assert table_digests(target) == before


def test_the_dump_holds_no_plaintext_and_the_manifest_checks_every_file(app_db: str, backup_key: bytes,
                                                                         repo_dir: Path) -> None:
    manifest = run_backup(app_db, open_storage(str(repo_dir), create=True), backup_key, BackupOptions(jobs=1))
    stored = sorted((repo_dir / manifest.id / "files").rglob("*"))
    assert [p.name for p in stored if p.is_file()] == sorted(f"{f.name}.enc" for f in manifest.files)
    assert all(p.read_bytes()[:8] == b"TLBKENC1" for p in stored if p.is_file())
    assert b"toc.dat" in (repo_dir / manifest.id / MANIFEST).read_bytes()
    assert not any(b"CREATE TABLE" in p.read_bytes() for p in stored if p.is_file())


def test_a_tampered_backup_file_fails_verification_and_the_failure_is_recorded(
        app_db: str, backup_key: bytes, repo_dir: Path) -> None:
    storage = open_storage(str(repo_dir), create=True)
    manifest = run_backup(app_db, storage, backup_key, BackupOptions(jobs=2))
    biggest = max(manifest.files, key=lambda f: f.size)
    victim = repo_dir / manifest.id / "files" / f"{biggest.name}.enc"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(BackupIntegrityError, match=f"{biggest.name} does not match its checksum"):
        verify_backup(storage, manifest.id, backup_key, ADMIN_URL)
    record = load_verification(storage, manifest.id)
    assert record is not None and not record.ok and "checksum" in record.detail


def test_a_file_swapped_with_its_checksum_is_caught_by_the_manifest_seal(app_db: str, backup_key: bytes,
                                                                          repo_dir: Path) -> None:
    storage = open_storage(str(repo_dir), create=True)
    manifest = run_backup(app_db, storage, backup_key, BackupOptions(jobs=2))
    doc = json.loads((repo_dir / manifest.id / MANIFEST).read_bytes())
    doc["row_counts"]["public.users"] += 1
    (repo_dir / manifest.id / MANIFEST).write_text(json.dumps(doc))
    with pytest.raises(BackupIntegrityError, match="manifest .* was altered"):
        verify_backup(storage, manifest.id, backup_key, ADMIN_URL)


def test_a_good_backup_verifies_by_restoring_and_says_so_in_the_listing(app_db: str, backup_key: bytes,
                                                                         repo_dir: Path) -> None:
    storage = open_storage(str(repo_dir), create=True)
    manifest = run_backup(app_db, storage, backup_key, BackupOptions(jobs=2))
    result = verify_backup(storage, manifest.id, backup_key, ADMIN_URL)
    assert result.ok and result.mismatched_tables == {}
    [listing] = list_backups(storage)
    assert listing.to_dict()["verified"]["ok"] is True
    with psycopg.connect(ADMIN_URL) as conn:  # the scratch database is gone
        scratch = conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'truelabel_verify_%'")
        assert scratch.fetchone()[0] == 0


def test_a_wrong_key_fails_with_a_clear_error_before_anything_is_restored(
        app_db: str, backup_key: bytes, repo_dir: Path, scratch_db_name: str) -> None:
    storage = open_storage(str(repo_dir), create=True)
    manifest = run_backup(app_db, storage, backup_key, BackupOptions(jobs=2))
    with pytest.raises(BackupKeyError, match="wrong backup key"):
        restore_backup(storage, manifest.id, sibling_url(app_db, scratch_db_name), secrets.token_bytes(32))


def test_restore_refuses_a_target_that_is_not_empty(app_db: str, backup_key: bytes, repo_dir: Path) -> None:
    storage = open_storage(str(repo_dir), create=True)
    manifest = run_backup(app_db, storage, backup_key, BackupOptions(jobs=2))
    with pytest.raises(TargetNotEmptyError, match="not empty"):
        restore_backup(storage, manifest.id, app_db, backup_key)


def test_an_unknown_backup_id_and_a_missing_repository_are_named(backup_key: bytes, repo_dir: Path,
                                                                  tmp_path: Path) -> None:
    storage = open_storage(str(repo_dir), create=True)
    with pytest.raises(BackupError, match="unknown backup id 'full-nope'"):
        restore_backup(storage, "full-nope", ADMIN_URL, backup_key)
    with pytest.raises(BackupError, match="backup folder not found"):
        list_backups(open_storage(str(tmp_path / "nowhere")))


def test_a_failed_backup_leaves_nothing_and_notifies(backup_key: bytes, repo_dir: Path, tmp_path: Path) -> None:
    seen = tmp_path / "seen.json"
    hook = f"{sys.executable} -c \"import sys; open('{seen}', 'w').write(sys.stdin.read())\""
    storage = open_storage(str(repo_dir), create=True)
    with pytest.raises(TargetError, match="cannot connect"):
        run_backup("postgresql://nobody@127.0.0.1:1/none", storage, backup_key, notifier=Notifier(command=hook))
    assert json.loads(seen.read_text())["status"] == "failure"
    assert list_backups(storage) == []


def test_a_successful_backup_notifies_with_its_id(app_db: str, backup_key: bytes, repo_dir: Path,
                                                  tmp_path: Path) -> None:
    seen = tmp_path / "seen.json"
    hook = f"{sys.executable} -c \"import sys; open('{seen}', 'w').write(sys.stdin.read())\""
    manifest = run_backup(app_db, open_storage(str(repo_dir), create=True), backup_key,
                          BackupOptions(jobs=1), Notifier(command=hook))
    event = json.loads(seen.read_text())
    assert event["status"] == "success" and event["backup_id"] == manifest.id


def test_the_free_space_check_refuses_a_backup_that_cannot_fit(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="not enough free space"):
        require_free_space(tmp_path, 1 << 60, "backup staging")
    require_free_space(tmp_path / "not" / "yet", 1024, "backup staging")


def test_the_manifest_reads_back_what_was_written(app_db: str, backup_key: bytes, repo_dir: Path) -> None:
    storage = open_storage(str(repo_dir), create=True)
    manifest = run_backup(app_db, storage, backup_key, BackupOptions(jobs=2))
    again = Manifest.from_json(storage.get_bytes(f"{manifest.id}/{MANIFEST}"), manifest.id)
    again.check_seal(backup_key)
    assert again == manifest and again.tool.startswith("pg_dump")


def test_row_counts_are_those_of_the_dumped_snapshot_while_the_app_writes(
        app_db: str, backup_key: bytes, repo_dir: Path, scratch_db_name: str) -> None:
    import threading

    stop = threading.Event()

    def app_writes() -> None:
        with psycopg.connect(app_db, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute("INSERT INTO analytics_events (event_type, entity_type, entity_id) "
                             "VALUES ('product_view', 'product', gen_random_uuid())")
                stop.wait(0.002)

    writer = threading.Thread(target=app_writes)
    writer.start()
    try:
        storage = open_storage(str(repo_dir), create=True)
        manifest = run_backup(app_db, storage, backup_key, BackupOptions(jobs=2))
    finally:
        stop.set()
        writer.join()
    result = restore_backup(storage, manifest.id, sibling_url(app_db, scratch_db_name), backup_key, jobs=2)
    assert result.ok, result.mismatches


def test_a_restore_that_fails_midway_leaves_no_database_behind(app_db: str, backup_key: bytes, repo_dir: Path,
                                                               scratch_db_name: str) -> None:
    storage = open_storage(str(repo_dir), create=True)
    manifest = run_backup(app_db, storage, backup_key, BackupOptions(jobs=2))
    victim = repo_dir / manifest.id / "files" / f"{manifest.files[-1].name}.enc"
    victim.write_bytes(victim.read_bytes() + b"tail")
    with pytest.raises(BackupIntegrityError):
        restore_backup(storage, manifest.id, sibling_url(app_db, scratch_db_name), backup_key)
    with psycopg.connect(ADMIN_URL) as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (scratch_db_name,))
        assert left.fetchone()[0] == 0


def test_no_child_process_inherits_the_backup_key(backup_key: bytes, tmp_path: Path) -> None:
    seen = tmp_path / "env.json"
    hook = f"{sys.executable} -c \"import json, os; open('{seen}', 'w').write(json.dumps(dict(os.environ)))\""
    Notifier(command=hook).notify("backup", "success")
    env = json.loads(seen.read_text())
    assert env["TRUELABEL_STATUS"] == "success" and "TRUELABEL_BACKUP_KEY" not in env


def test_the_webhook_receives_the_outcome_and_a_dead_one_is_only_a_warning() -> None:
    import http.server
    import threading

    received: list[dict[str, object]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        Notifier(webhook=f"http://127.0.0.1:{server.server_port}/hook").notify("backup", "failure", error="disk full")
    finally:
        server.shutdown()
        thread.join()
    assert received == [{"event": "backup", "status": "failure", "error": "disk full"}]
    warnings: list[str] = []
    Notifier(webhook="http://127.0.0.1:1/hook", warn=warnings.append).notify("backup", "success")
    assert len(warnings) == 1 and "webhook failed" in warnings[0] and "127.0.0.1:1" not in warnings[0]
