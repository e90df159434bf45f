"""A streaming replica of a primary, made on this machine with ``pg_basebackup -R`` (plan §2.2
phase 1 and §5.1).

Run it on the machine that will host the replica; the primary may be anywhere its URL reaches.
The base backup streams the WAL it needs (``-X stream``), ``-R`` writes ``standby.signal`` and
``primary_conninfo``, and the replica starts as a private cluster (the ``embedded`` module's:
its own system user, 127.0.0.1 unless told otherwise, its settings in ``truelabel.conf``). The
primary is checked first so that a refusal is one line saying what to change there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from truelabel_db.embedded import EmbeddedCluster
from truelabel_db.errors import ConfigError, ExitCode, TrueLabelError
from truelabel_db.postgres import connect, describe, redact

STREAMING_WAIT_SECONDS = 60.0


class ReplicaError(TrueLabelError):
    """The replica could not be made or started; the message says what the primary lacks."""

    exit_code = ExitCode.REPLICA


@dataclass(frozen=True)
class Replica:
    name: str
    base_dir: str
    port: int
    url: str
    streaming: bool

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "base_dir": self.base_dir, "port": self.port, "url": self.url,
                "streaming": self.streaming}


def check_primary(primary_url: str) -> None:
    """Refuse, with what to change, a primary that cannot feed a streaming replica."""
    with connect(primary_url, autocommit=True) as conn:
        wal_level, senders, used, can = conn.execute(
            "SELECT current_setting('wal_level'), current_setting('max_wal_senders')::int, "
            "(SELECT count(*) FROM pg_stat_replication), "
            "(SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user)").fetchone()
    if wal_level not in ("replica", "logical"):
        raise ReplicaError(f"the primary has wal_level = {wal_level}; set it to replica and restart it")
    if used >= senders:
        raise ReplicaError(f"the primary's {senders} WAL sender slot(s) are all in use; "
                           "raise max_wal_senders and restart it")
    if not can:
        raise ReplicaError("the primary's user has no REPLICATION privilege: ALTER ROLE ... REPLICATION")


def add_replica(primary_url: str, base_dir: Path, port: int, *, name: str | None = None,
                slot: str | None = None, listen: str = "127.0.0.1",
                wait_seconds: float = STREAMING_WAIT_SECONDS) -> Replica:
    """Make ``base_dir/data`` a base backup of the primary, start it as a streaming replica."""
    name = name or f"replica_{port}"
    cluster = EmbeddedCluster(base_dir, port=port, settings={"listen_addresses": listen})
    if cluster.data_dir.exists() and any(cluster.data_dir.iterdir()):
        raise ConfigError(f"{cluster.data_dir} already holds files; choose an empty folder")
    check_primary(primary_url)
    args = ["-D", str(cluster.data_dir), "-R", "-X", "stream", "-c", "fast", "--no-password",
            "-d", _replication_conninfo(primary_url, name)]
    if slot:
        args += ["-C", "-S", slot]
    result = cluster.run_tool("pg_basebackup", *args)
    if result.returncode != 0:
        raise ReplicaError(f"pg_basebackup from {describe(primary_url)} failed: "
                           + redact(_last_line(result.stderr or result.stdout)))
    _complete_config(cluster)
    cluster.start()
    dbname = conninfo_to_dict(primary_url).get("dbname") or "postgres"
    url = cluster.url_for(str(dbname))
    return Replica(name, str(cluster.base_dir), cluster.port, url, wait_streaming(url, wait_seconds))


def _replication_conninfo(primary_url: str, name: str) -> str:
    """The primary's connection for the base backup, named so that the primary lists it."""
    try:
        return make_conninfo(primary_url, application_name=name)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"invalid primary URL: {redact(str(exc))}") from exc


def _complete_config(cluster: EmbeddedCluster) -> None:
    """A primary whose configuration lives outside its data folder (Debian) sends none: write
    the minimum, and make sure the replica reads its own ``truelabel.conf``."""
    conf = cluster.data_dir / "postgresql.conf"
    include = "include_if_exists = 'truelabel.conf'"
    text = conf.read_text() if conf.exists() else ""
    if include not in text:
        conf.write_text(text + f"\n{include}\n")
    hba = cluster.data_dir / "pg_hba.conf"
    if not hba.exists():
        hba.write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n"
                       "host replication all 127.0.0.1/32 trust\n")
    for path in (conf, hba):
        _give_to_cluster_user(cluster, path)


def _give_to_cluster_user(cluster: EmbeddedCluster, path: Path) -> None:
    import os

    owner = cluster.data_dir.stat()
    os.chown(path, owner.st_uid, owner.st_gid)


def wait_streaming(url: str, seconds: float) -> bool:
    """True once the replica's WAL receiver streams from the primary (waits up to ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                row = conn.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
            if row and row[0] == "streaming":
                return True
        except psycopg.OperationalError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
