"""The private cluster the demo runs on: starts anywhere, keeps its data, survives kill -9, and
lives where its server's user can reach it whatever the working directory."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.fix_cli import run_cli
from truelabel_db import embedded
from truelabel_db.embedded import EmbeddedCluster, cluster_home, find_server_binaries, scratch_cluster_dir
from truelabel_db.errors import EmbeddedClusterError


def _refuses_connections(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return True
    return False


def test_a_cluster_starts_answers_and_stops(cluster_dir: Path) -> None:
    cluster = EmbeddedCluster(cluster_dir / "pg")
    with cluster:
        with psycopg.connect(cluster.url) as conn:
            assert conn.execute("SELECT 1 + 1").fetchone() == (2,)
            assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
    assert _refuses_connections(cluster.url)


def test_a_restart_keeps_the_data(cluster: EmbeddedCluster) -> None:
    url = cluster.create_database("kept")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t AS SELECT 42 AS answer")
    cluster.restart()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT answer FROM t").fetchone() == (42,)


def test_settings_are_applied_and_changed_on_restart(cluster: EmbeddedCluster) -> None:
    cluster.restart({"work_mem": "7MB", "wal_level": "replica"})
    with psycopg.connect(cluster.url) as conn:
        assert conn.execute("SHOW work_mem").fetchone() == ("7MB",)
        assert conn.execute("SHOW wal_level").fetchone() == ("replica",)


def test_start_after_the_server_was_killed(cluster: EmbeddedCluster) -> None:
    pid = int((cluster.data_dir / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)
    cluster.start()
    with psycopg.connect(cluster.url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_an_empty_binaries_folder_is_refused_with_what_to_install(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUELABEL_PG_BINDIR", str(tmp_path))
    with pytest.raises(EmbeddedClusterError, match="no PostgreSQL server binaries in"):
        find_server_binaries()


def test_no_binaries_anywhere_names_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRUELABEL_PG_BINDIR", raising=False)
    monkeypatch.setattr(embedded, "_candidates", lambda: [])
    with pytest.raises(EmbeddedClusterError, match="postgresql-15"):
        find_server_binaries()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the cluster as another user")
def test_a_folder_the_cluster_user_cannot_enter_is_refused_clearly(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(EmbeddedClusterError, match="cannot enter"):
        EmbeddedCluster(private / "pg").start()


@pytest.fixture
def open_base() -> Iterator[Path]:
    """A folder every user can traverse, standing in for the system's temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="truelabel-base-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _server_uid() -> int:
    return pwd.getpwnam(embedded.CLUSTER_USER).pw_uid if os.geteuid() == 0 else os.geteuid()


def test_the_cluster_home_belongs_to_the_servers_user_and_no_one_else_may_enter(open_base: Path) -> None:
    home = cluster_home(open_base)
    assert home.parent == open_base.resolve() and home.name.startswith("truelabel-db-")
    info = home.stat()
    assert info.st_uid == _server_uid() and stat.S_IMODE(info.st_mode) == 0o700
    home.chmod(0o755)
    assert cluster_home(open_base) == home and stat.S_IMODE(home.stat().st_mode) == 0o700  # tightened again


def test_a_cluster_home_planted_as_a_link_is_refused(open_base: Path, tmp_path: Path) -> None:
    planted = open_base / f"truelabel-db-{pwd.getpwuid(os.geteuid()).pw_name}"
    planted.symlink_to(tmp_path)
    with pytest.raises(EmbeddedClusterError, match="not a folder of the PostgreSQL server's user"):
        cluster_home(open_base)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a folder another user owns")
def test_a_cluster_home_of_another_owner_is_refused(open_base: Path) -> None:
    planted = open_base / "truelabel-db-root"
    planted.mkdir(mode=0o700)
    os.chown(planted, pwd.getpwnam("nobody").pw_uid, -1)
    with pytest.raises(EmbeddedClusterError, match="remove it, or set TMPDIR"):
        cluster_home(open_base)


def test_a_scratch_folder_is_reachable_and_removed_and_litter_of_dead_runs_is_swept(open_base: Path) -> None:
    home = cluster_home(open_base)
    dead = _a_dead_pid()
    litter, alive = home / "demo-litter", home / "demo-running"
    for folder, pid in ((litter, dead), (alive, os.getpid())):
        folder.mkdir()
        (folder / embedded.OWNER_FILE).write_text(str(pid))
    with scratch_cluster_dir("demo-", base=open_base) as folder:
        assert folder.parent == home and folder.stat().st_uid == _server_uid()
        assert not litter.exists() and alive.exists()   # another run still going keeps its folder
    assert not folder.exists()


def _a_dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.mark.slow
def test_the_demo_runs_from_a_folder_the_servers_user_cannot_enter(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    result = run_cli("demo", "--scale", "0.01", "--workers", "1", cwd=private, timeout=600)
    assert result.code == 0, result.stderr
    assert "reconciled" in result.stderr and (private / ".truelabel" / "demo" / "legacy.db").exists()
    folder = Path(re.search(r"\(in (\S+), removed afterwards\)", result.stderr.replace("\n", " ")).group(1))
    assert not folder.exists() and folder.parent.name.startswith("truelabel-db-")
