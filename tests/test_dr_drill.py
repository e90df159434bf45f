"""The DR drill: the latest backup becomes a usable database next to production, or nothing is left."""

from __future__ import annotations

import psycopg
import pytest

from tests.fix_db import ADMIN_URL
from truelabel_db.backup import BackupOptions, open_storage, run_backup
from truelabel_db.backup.database import database_name, drop_database, sibling_url
from truelabel_db.dr.drill import DrillFailed, run_drill
from truelabel_db.pitr.repo import PitrRepo

pytestmark = pytest.mark.slow   # every drill restores a backup: seconds each


def drill_databases(url: str) -> list[str]:
    with psycopg.connect(ADMIN_URL) as conn:
        return [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                           (database_name(url) + "_dr_%",))]


def test_the_drill_restores_the_latest_backup_validates_it_and_reports_rto_and_rpo(
        app_db: str, backup_key: bytes, repo_dir) -> None:
    storage = open_storage(str(repo_dir), create=True)
    run_backup(app_db, storage, backup_key, BackupOptions(jobs=2))
    latest = run_backup(app_db, storage, backup_key, BackupOptions(jobs=2))
    report = run_drill(app_db, storage, backup_key, jobs=2)
    assert report.ok and report.backup_id == latest.id
    assert [s.name for s in report.steps] == ["validate backup", "restore next to production", "validate data",
                                              "report"]
    assert all(s.ok for s in report.steps)
    assert report.rto_seconds is not None and report.rpo_seconds is not None
    assert report.rpo_source.startswith("age of backup") and report.rows_since_backup == 0
    with psycopg.connect(app_db, autocommit=True) as conn:
        conn.execute("INSERT INTO laboratories (name, accreditation, email) "
                     "VALUES ('Novo', 'ISO 17025', 'novo@lab.br')")
    assert run_drill(app_db, storage, backup_key, jobs=2).rows_since_backup == 1
    assert drill_databases(app_db) == []  # the copy is dropped unless kept


def test_the_rpo_comes_from_the_newest_archived_wal_when_there_is_an_archive(
        app_db: str, backup_key: bytes, repo_dir, tmp_path) -> None:
    storage = open_storage(str(repo_dir), create=True)
    run_backup(app_db, storage, backup_key, BackupOptions(jobs=2))
    pitr = PitrRepo(tmp_path / "pitr")
    pitr.wal.mkdir(parents=True)
    (pitr.wal / "000000010000000000000007").write_bytes(b"x")
    (pitr.wal / "000000010000000000000006").write_bytes(b"x")
    report = run_drill(app_db, storage, backup_key, pitr_repo=pitr, keep=True, jobs=2)
    assert report.rpo_source == "newest archived WAL 000000010000000000000007"
    kept = sibling_url(app_db, report.restored_to.rsplit("/", 1)[1])
    try:
        assert drill_databases(app_db) == [database_name(kept)]
        with psycopg.connect(kept) as conn:
            assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 10
    finally:
        drop_database(kept)


def test_a_failed_drill_rolls_back_and_says_at_which_step(app_db: str, backup_key: bytes, repo_dir,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    storage = open_storage(str(repo_dir), create=True)
    run_backup(app_db, storage, backup_key, BackupOptions(jobs=2))
    from truelabel_db.backup.errors import BackupIntegrityError
    from truelabel_db.dr import drill as drill_module

    def broken(self: object) -> str:
        raise BackupIntegrityError("the restored database has 1 invalid index(es)")

    monkeypatch.setattr(drill_module._Drill, "validate_data", broken)
    with pytest.raises(DrillFailed, match="failed at validate data") as failure:
        run_drill(app_db, storage, backup_key, jobs=2)
    report = failure.value.report
    assert [s.ok for s in report.steps] == [True, True, False]
    assert drill_databases(app_db) == []  # the half-validated copy was dropped


def test_a_tampered_latest_backup_fails_the_first_step_and_restores_nothing(app_db: str, backup_key: bytes,
                                                                             repo_dir) -> None:
    storage = open_storage(str(repo_dir), create=True)
    manifest = run_backup(app_db, storage, backup_key, BackupOptions(jobs=2))
    victim = repo_dir / manifest.id / "files" / f"{manifest.files[0].name}.enc"
    victim.write_bytes(victim.read_bytes()[:-1])
    with pytest.raises(DrillFailed, match="failed at validate backup: .*checksum"):
        run_drill(app_db, storage, backup_key)
    assert drill_databases(app_db) == []


def test_the_drill_command_prints_its_report_as_json(app_db: str, backup_key: bytes, repo_dir) -> None:
    import base64
    import json

    from tests.fix_cli import run_cli

    env = {"TRUELABEL_BACKUP_KEY": base64.b64encode(backup_key).decode()}
    assert run_cli("backup", "run", "--target", app_db, "--to", str(repo_dir), "--jobs", "2", env=env).code == 0
    result = run_cli("dr", "drill", "--target", app_db, "--to", str(repo_dir), "--jobs", "2", "--json", env=env)
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["rto_seconds"] > 0 and len(report["steps"]) == 4
