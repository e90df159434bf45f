"""The private cluster the demo runs on: starts anywhere, keeps its data, survives kill -9."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psycopg
import pytest

from truelabel_db import embedded
from truelabel_db.embedded import EmbeddedCluster, find_server_binaries
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
