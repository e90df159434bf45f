"""Passwords never on a command line: ``replica add`` and the backup tools hand them to
PostgreSQL's programs through the environment or a private passfile, and a replica whose primary
sends no ``pg_hba.conf`` gets password (SCRAM) rules for a dedicated replication role, never trust."""

from __future__ import annotations

import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.fix_backup import table_digests
from tests.fix_tool_spy import ToolCalls
from truelabel_db.backup import BackupOptions, open_storage, restore_backup, run_backup
from truelabel_db.backup.database import sibling_url
from truelabel_db.embedded import CLUSTER_USER, EmbeddedCluster, free_port
from truelabel_db.replicas.add import add_replica

PASSWORD = "rep:li\\cation-s3cret"  # a colon and a backslash: the passfile must escape both


@dataclass
class ScramPrimary:
    cluster: EmbeddedCluster
    url: str          # the dedicated replication role, with its password
    folder: Path


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@pytest.fixture
def scram_primary() -> Iterator[ScramPrimary]:
    """A primary configured like Debian's (pg_hba.conf outside the data folder, so a base backup
    carries none) that lets the role ``replicator`` in by SCRAM password only."""
    folder = Path(tempfile.mkdtemp(prefix="truelabel-scram-"))
    folder.chmod(0o755)
    hba = folder / "pg_hba.conf"
    hba.write_text("local all all trust\nhost all postgres 127.0.0.1/32 trust\n"
                   "host all replicator 127.0.0.1/32 scram-sha-256\n"
                   "host replication replicator 127.0.0.1/32 scram-sha-256\n")
    cluster = EmbeddedCluster(folder / "primary", settings={"hba_file": str(hba)})
    try:
        cluster.start()
        user = pwd.getpwnam(CLUSTER_USER)
        shutil.chown(hba, user.pw_uid, user.pw_gid)
        (cluster.data_dir / "pg_hba.conf").unlink()
        cluster.restart()
        with psycopg.connect(cluster.url, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE replicator LOGIN REPLICATION PASSWORD {_quote(PASSWORD)}")
            conn.execute("CREATE DATABASE app")
        url = psycopg.conninfo.make_conninfo(host="127.0.0.1", port=str(cluster.port), user="replicator",
                                             password=PASSWORD, dbname="app")
        yield ScramPrimary(cluster, url, folder)
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _no_password_in(call: dict[str, object]) -> bool:
    return not any(PASSWORD in str(arg) or "password=" in str(arg).lower() for arg in call["argv"])  # type: ignore[attr-defined]


def test_replica_add_keeps_the_password_off_the_command_line_and_out_of_the_replica_config(
        scram_primary: ScramPrimary, tool_calls: ToolCalls, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUELABEL_BACKUP_KEY", "c2VjcmV0LWtleS1ieXRlcw==")
    replica_dir = scram_primary.folder / "replica"
    port = free_port()
    try:
        replica = add_replica(scram_primary.url, replica_dir, port, name="replica_scram")
        [call] = tool_calls.calls("pg_basebackup")
        assert _no_password_in(call), call["argv"]
        assert "TRUELABEL_BACKUP_KEY" not in call["env"]  # type: ignore[operator]

        data = replica_dir / "data"
        auto_conf = (data / "postgresql.auto.conf").read_text()
        assert PASSWORD not in auto_conf and "password=" not in auto_conf and "passfile=" in auto_conf
        [passfile] = [p for p in replica_dir.iterdir() if p.name.endswith(".pgpass")]
        assert stat.S_IMODE(passfile.stat().st_mode) == 0o600 and passfile.owner() == CLUSTER_USER

        hba = [line.split() for line in (data / "pg_hba.conf").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
        assert all(rule[-1] != "trust" for rule in hba)
        assert ["host", "replication", "replicator", "127.0.0.1/32", "scram-sha-256"] in hba

        assert replica.streaming and PASSWORD not in str(replica.to_dict())
        with pytest.raises(psycopg.OperationalError):  # no password, no entry
            psycopg.connect(replica.url, connect_timeout=5).close()
        with psycopg.connect(replica.url, password=PASSWORD, autocommit=True) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
    finally:
        EmbeddedCluster(replica_dir, port=port).stop()


def test_the_backup_tools_get_the_password_in_their_environment_only(
        app_db: str, backup_key: bytes, repo_dir: Path, scratch_db_name: str, tool_calls: ToolCalls) -> None:
    with_password = psycopg.conninfo.make_conninfo(app_db, password="not-on-any-command-line")
    storage = open_storage(str(repo_dir), create=True)
    manifest = run_backup(with_password, storage, backup_key, BackupOptions(jobs=2))
    target = psycopg.conninfo.make_conninfo(sibling_url(app_db, scratch_db_name), password="not-on-any-command-line")
    assert restore_backup(storage, manifest.id, target, backup_key, jobs=2).ok
    assert table_digests(sibling_url(app_db, scratch_db_name)) == table_digests(app_db)
    calls = [c for c in tool_calls.calls() if "--version" not in c["argv"]]  # type: ignore[operator]
    assert {c["program"] for c in calls} == {"pg_dump", "pg_restore"}
    for call in calls:
        assert "not-on-any-command-line" not in str(call["argv"])
        assert "PGPASSWORD" in call["env"] and "TRUELABEL_BACKUP_KEY" not in call["env"]  # type: ignore[operator]


def test_the_pitr_base_backup_gets_the_password_in_its_environment_only(
        cluster: EmbeddedCluster, cluster_dir: Path, tool_calls: ToolCalls) -> None:
    from truelabel_db.pitr.basebackup import take_basebackup
    from truelabel_db.pitr.repo import PitrRepo
    from truelabel_db.pitr.setup import setup_archiving

    url = psycopg.conninfo.make_conninfo(cluster.url, password="not-on-any-command-line")
    setup_archiving(url, cluster_dir / "pitr")
    take_basebackup(url, PitrRepo(cluster_dir / "pitr"))
    [call] = tool_calls.calls("pg_basebackup")
    assert "not-on-any-command-line" not in str(call["argv"]) and "PGPASSWORD" in call["env"]  # type: ignore[operator]
