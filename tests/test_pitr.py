"""Point-in-time recovery on private clusters: archive, base backup, recover to a noted moment."""

from __future__ import annotations

import struct
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from truelabel_db.backup.errors import RecoveryError
from truelabel_db.embedded import EmbeddedCluster
from truelabel_db.pitr.archive_wal import EXIT_REFUSED, segment_system_id
from truelabel_db.pitr.basebackup import take_basebackup
from truelabel_db.pitr.repo import PitrRepo
from truelabel_db.pitr.restore import (
    parse_target_time,
    plan_recovery,
    restore_to_time,
    wait_until_promoted,
)
from truelabel_db.pitr.setup import setup_archiving

SCRIPT = Path(__file__).resolve().parents[1] / "src" / "truelabel_db" / "pitr" / "archive_wal.py"


def archive(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def wait_archived(conn: psycopg.Connection, segment: str) -> None:
    deadline = time.monotonic() + 60
    while (conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0] or "") < segment:
        assert time.monotonic() < deadline, "the segment was never archived"
        time.sleep(0.2)


@pytest.mark.slow
def test_recovery_to_a_noted_time_finds_exactly_the_rows_written_before_it(cluster: EmbeddedCluster,
                                                                            cluster_dir: Path) -> None:
    repo = PitrRepo(cluster_dir / "repo")
    setup = setup_archiving(cluster.url, repo.root)
    assert "archive_mode" in setup.restart_needed
    cluster.restart()
    assert setup_archiving(cluster.url, repo.root).restart_needed == []  # a second setup is a no-op
    url = cluster.create_database("app")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE marks (n int PRIMARY KEY)")
    base = take_basebackup(cluster.url, repo)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO marks SELECT generate_series(1, 100)")
        noted = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        conn.execute("INSERT INTO marks SELECT generate_series(101, 150)")
        conn.execute("INSERT INTO marks SELECT generate_series(151, 200)")
        segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
        wait_archived(conn, segment)
        system_id = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0]
    cluster.stop()  # production is gone; only the repository is left

    archived = sorted(p for p in repo.wal.iterdir() if len(p.name) == 24)
    assert archived and segment_system_id(str(archived[0])) == system_id
    plan = restore_to_time(repo, noted, cluster_dir / "restored" / "data")
    assert plan.base_backup.id == base.id
    restored = EmbeddedCluster(cluster_dir / "restored").start()
    try:
        wait_until_promoted(restored.url)
        with psycopg.connect(restored.url_for("app")) as conn:
            assert conn.execute("SELECT count(*), min(n), max(n) FROM marks").fetchone() == (100, 1, 100)
            assert conn.execute("SHOW archive_mode").fetchone() == ("off",)  # never writes into production's archive
    finally:
        restored.stop()


def test_a_target_before_every_base_backup_is_refused(cluster: EmbeddedCluster, cluster_dir: Path) -> None:
    repo = PitrRepo(cluster_dir / "repo")
    setup_archiving(cluster.url, repo.root)
    cluster.restart()
    base = take_basebackup(cluster.url, repo)
    with pytest.raises(RecoveryError, match="no base backup finished before"):
        plan_recovery(repo, base.finished - timedelta(hours=1), cluster_dir / "new")
    with pytest.raises(RecoveryError, match="in the future"):
        plan_recovery(repo, base.finished + timedelta(days=1), cluster_dir / "new")
    (cluster_dir / "busy").mkdir()
    (cluster_dir / "busy" / "PG_VERSION").write_text("15")
    with pytest.raises(RecoveryError, match="not empty"):
        plan_recovery(repo, base.finished, cluster_dir / "busy")


def test_a_repository_of_another_cluster_is_refused(cluster: EmbeddedCluster, cluster_dir: Path) -> None:
    repo = PitrRepo(cluster_dir / "repo")
    repo.root.mkdir()
    (repo.root / "pitr.json").write_text('{"system_identifier": 42}')
    with pytest.raises(RecoveryError, match="holds the WAL of cluster 42"):
        setup_archiving(cluster.url, repo.root)


@pytest.mark.parametrize("text", ["2026-11-24 10:15:00", "yesterday"])
def test_a_target_time_without_an_offset_or_unreadable_is_refused(text: str) -> None:
    with pytest.raises(RecoveryError):
        parse_target_time(text)


def test_the_archive_command_refuses_to_overwrite_a_segment(tmp_path: Path) -> None:
    wal, archive_dir = tmp_path / "000000010000000000000001", tmp_path / "archive"
    archive_dir.mkdir()
    wal.write_bytes(b"first contents" * 1000)
    assert archive("push", str(wal), wal.name, str(archive_dir)).returncode == 0
    again = archive("push", str(wal), wal.name, str(archive_dir))
    assert again.returncode == 0 and "identical" in again.stderr  # a retry after a crash is fine

    wal.write_bytes(b"other contents" * 1000)
    refused = archive("push", str(wal), wal.name, str(archive_dir))
    assert refused.returncode == EXIT_REFUSED and "refusing to overwrite" in refused.stderr
    assert (archive_dir / wal.name).read_bytes() == b"first contents" * 1000
    assert [p.name for p in archive_dir.iterdir()] == [wal.name]  # no temporary file left


def test_the_archive_command_refuses_another_clusters_segment(tmp_path: Path) -> None:
    header = struct.pack("=HHIQI4xQII", 0xD110, 0x0002, 1, 0, 0, 1111, 16 << 20, 8192)
    wal = tmp_path / "000000010000000000000002"
    wal.write_bytes(header + bytes(100))
    (tmp_path / "archive").mkdir()
    result = archive("push", str(wal), wal.name, str(tmp_path / "archive"), "2222")
    assert result.returncode == EXIT_REFUSED and "1111" in result.stderr and "refusing to mix" in result.stderr
    assert archive("push", str(wal), wal.name, str(tmp_path / "archive"), "1111").returncode == 0


def test_the_archive_command_fails_honestly(tmp_path: Path) -> None:
    assert archive("push", str(tmp_path / "gone"), "000000010000000000000003", str(tmp_path)).returncode != 0
    assert archive("push", str(tmp_path / "x"), "x", str(tmp_path / "no-such-folder")).returncode != 0
    assert archive("fetch", "000000010000000000000009", str(tmp_path / "out"), str(tmp_path)).returncode == 1


@pytest.mark.slow
def test_the_pitr_commands_set_up_back_up_and_prepare_a_recovery(cluster: EmbeddedCluster, cluster_dir: Path) -> None:
    import json

    from tests.fix_cli import run_cli

    repo = cluster_dir / "repo"
    setup = run_cli("pitr", "setup", "--repo", str(repo), "--target", cluster.url, "--json")
    assert setup.code == 0 and "restart PostgreSQL" in setup.stderr
    assert json.loads(setup.stdout)["settings"]["archive_mode"] == "on"
    cluster.restart()
    base = run_cli("pitr", "basebackup", "--repo", str(repo), "--target", cluster.url, "--json")
    assert base.code == 0, base.stderr
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        moment = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        conn.execute("SELECT pg_switch_wal()")
    status = run_cli("pitr", "status", "--repo", str(repo), "--target", cluster.url, "--json")
    assert json.loads(status.stdout)["base_backups"] == [json.loads(base.stdout)["id"]]
    data = cluster_dir / "restored" / "data"
    restored = run_cli("pitr", "restore", "--repo", str(repo), "--target-time", moment.isoformat(),
                       "--data-dir", str(data))
    assert restored.code == 0, restored.stderr
    assert (data / "recovery.signal").exists() and not (data / "postmaster.pid").exists()
    settings = (data / "postgresql.auto.conf").read_text()
    assert "recovery_target_time" in settings and "+00:00" in settings and "archive_mode = 'off'" in settings
    again = run_cli("pitr", "restore", "--repo", str(repo), "--target-time", moment.isoformat(),
                    "--data-dir", str(data))
    assert again.code == 23 and "not empty" in again.stderr
