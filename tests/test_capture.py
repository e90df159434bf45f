"""Change capture: every process's writes land in the changelog, in the writer's transaction."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import psycopg
import pytest

from tests.fix_cli import run_cli
from tests.fix_legacy import insert
from truelabel_db.capture import (
    CHANGELOG_TABLE,
    capture_status,
    install_capture,
    remove_capture,
)
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.errors import SourceError


def _changes(path: Path) -> list[tuple[str, str, str]]:
    return sqlite3.connect(path).execute(f"SELECT tbl, op, pk FROM {CHANGELOG_TABLE} ORDER BY seq").fetchall()


def test_inserts_updates_and_deletes_of_another_connection_are_captured(real_legacy: Path) -> None:
    install_capture(real_legacy)
    app = sqlite3.connect(real_legacy)
    user = insert(app, "users")
    app.execute("UPDATE users SET name = 'Outro' WHERE id = ?", (user,))
    app.execute("DELETE FROM users WHERE id = ?", (user,))
    app.commit()
    assert _changes(real_legacy) == [("users", "U", user), ("users", "U", user), ("users", "D", user)]


def test_a_rolled_back_write_leaves_no_change(real_legacy: Path) -> None:
    install_capture(real_legacy)
    app = sqlite3.connect(real_legacy)
    insert(app, "users")
    app.rollback()
    assert _changes(real_legacy) == []


def test_a_key_change_is_the_old_keys_delete_and_the_new_keys_upsert(real_legacy: Path) -> None:
    install_capture(real_legacy)
    app = sqlite3.connect(real_legacy)
    old = app.execute("SELECT id FROM laboratories LIMIT 1").fetchone()[0]
    app.execute("PRAGMA foreign_keys = OFF")
    app.execute("UPDATE laboratories SET id = 'new-key' WHERE id = ?", (old,))
    app.commit()
    assert _changes(real_legacy) == [("laboratories", "D", old), ("laboratories", "U", "new-key")]


SCHEMA = "SELECT sql FROM sqlite_master WHERE name <> 'sqlite_sequence' ORDER BY name"


def test_install_is_idempotent_and_remove_leaves_the_file_as_it_was(real_legacy: Path) -> None:
    """(SQLite never drops its sqlite_sequence table once made; our row in it goes.)"""
    before = sqlite3.connect(real_legacy).execute(SCHEMA).fetchall()
    first = install_capture(real_legacy)
    second = install_capture(real_legacy)
    assert first.triggers == second.triggers == first.expected_triggers == 39  # 3 per table, 2 per unique-keyed one
    remove_capture(real_legacy)
    assert sqlite3.connect(real_legacy).execute(SCHEMA).fetchall() == before
    assert sqlite3.connect(real_legacy).execute("SELECT count(*) FROM sqlite_sequence").fetchone() == (0,)
    assert not capture_status(real_legacy).installed


def test_install_waits_for_a_writer_instead_of_failing(real_legacy: Path) -> None:
    writer = sqlite3.connect(real_legacy, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, writer.commit)
    release.start()
    status = install_capture(real_legacy)
    release.join()
    assert status.installed


def test_a_schema_change_after_install_is_noticed(real_legacy: Path) -> None:
    install_capture(real_legacy)
    sqlite3.connect(real_legacy).execute('ALTER TABLE users ADD COLUMN "nickname" TEXT').connection.commit()
    assert capture_status(real_legacy).schema_changed


def test_a_file_that_is_not_true_labels_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(SourceError, match="not a True Label database"):
        install_capture(path)


def test_the_copy_records_where_the_changelog_stood(real_legacy: Path, pg_url: str, tmp_path: Path) -> None:
    install_capture(real_legacy)
    app = sqlite3.connect(real_legacy)
    for _ in range(3):
        insert(app, "users")
    app.commit()
    result = run_copy(real_legacy, pg_url, CopyOptions(work_dir=tmp_path / "w"))
    with psycopg.connect(pg_url) as conn:
        position = conn.execute("SELECT changelog_position FROM truelabel_meta.copy_runs WHERE run_id = %s",
                                (result.run_id,)).fetchone()[0]
    assert position == 3 and result.tables["users"].written == 6


def test_the_cli_installs_reports_and_removes(real_legacy: Path) -> None:
    assert run_cli("capture", "install", "--source", str(real_legacy)).code == 0
    status = run_cli("capture", "status", "--source", str(real_legacy), "--json")
    assert status.code == 0 and '"installed": true' in status.stdout
    assert "CREATE TRIGGER" in run_cli("capture", "install", "--source", str(real_legacy), "--sql").stdout
    assert run_cli("capture", "remove", "--source", str(real_legacy)).code == 0
