"""A streaming replica of a primary, made on this machine with ``pg_basebackup -R`` (plan §2.2
phase 1 and §5.1).

Run it on the machine that will host the replica; the primary may be anywhere its URL reaches.
The base backup streams the WAL it needs (``-X stream``), ``-R`` writes ``standby.signal`` and
``primary_conninfo``, and the replica starts as a private cluster (the ``embedded`` module's:
its own system user, 127.0.0.1 unless told otherwise, its settings in ``truelabel.conf``). The
primary is checked first so that a refusal is one line saying what to change there.

The URL names the replication role and its password. The password never reaches a command line
(``ps`` shows those to every user) nor ``primary_conninfo``: it goes into a passfile beside the
data folder, 0600 and owned by the cluster's user, which ``pg_basebackup`` reads through
``PGPASSFILE`` and ``-R`` then names in ``primary_conninfo`` for the replica's own streaming.
When the primary keeps its ``pg_hba.conf`` outside its data folder (Debian does) the replica
receives none, and gets rules that demand a SCRAM password on TCP (with replication open to the
replication role only) and the operating system's word on the local socket; never ``trust``.
"""

from __future__ import annotations

import os
import pwd
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from truelabel_db.embedded import CLUSTER_USER, EmbeddedCluster
from truelabel_db.errors import ConfigError, ExitCode, TrueLabelError
from truelabel_db.hooks import scrubbed_environment
from truelabel_db.postgres import connect, describe, one, redact
from truelabel_db.private import write_private

STREAMING_WAIT_SECONDS = 60.0
PASSFILE = "primary.pgpass"


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


def check_primary(primary_url: str) -> str:
    """Refuse, with what to change, a primary that cannot feed a streaming replica; the
    replication role's name when it can."""
    with connect(primary_url, autocommit=True) as conn:
        wal_level, senders, used, can, role = one(conn.execute(
            "SELECT current_setting('wal_level'), current_setting('max_wal_senders')::int, "
            "(SELECT count(*) FROM pg_stat_replication), "
            "(SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user), "
            "current_user"))
    if wal_level not in ("replica", "logical"):
        raise ReplicaError(f"the primary has wal_level = {wal_level}; set it to replica and restart it")
    if used >= senders:
        raise ReplicaError(f"the primary's {senders} WAL sender slot(s) are all in use; "
                           "raise max_wal_senders and restart it")
    if not can:
        raise ReplicaError("the primary's user has no REPLICATION privilege: ALTER ROLE ... REPLICATION")
    return str(role)


def add_replica(primary_url: str, base_dir: Path, port: int, *, name: str | None = None,
                slot: str | None = None, listen: str = "127.0.0.1",
                wait_seconds: float = STREAMING_WAIT_SECONDS) -> Replica:
    """Make ``base_dir/data`` a base backup of the primary, start it as a streaming replica."""
    name = name or f"replica_{port}"
    cluster = EmbeddedCluster(base_dir, port=port, settings={"listen_addresses": listen})
    if cluster.data_dir.exists() and any(cluster.data_dir.iterdir()):
        raise ConfigError(f"{cluster.data_dir} already holds files; choose an empty folder")
    role = check_primary(primary_url)
    login = split_password(primary_url, name)
    env = scrubbed_environment()
    if login.password:
        env["PGPASSFILE"] = str(write_passfile(cluster.base_dir, role, login.password))
    args = ["-D", str(cluster.data_dir), "-R", "-X", "stream", "-c", "fast", "--no-password",
            "-d", login.conninfo]
    if slot:
        args += ["-C", "-S", slot]
    result = cluster.run_tool("pg_basebackup", *args, env=env)
    if result.returncode != 0:
        raise ReplicaError(f"pg_basebackup from {describe(primary_url)} failed: "
                           + redact(_last_line(result.stderr or result.stdout)))
    _complete_config(cluster, role)
    cluster.start()
    url = replica_url(primary_url, cluster.port)
    streaming = wait_streaming(make_conninfo(url, password=login.password) if login.password else url, wait_seconds)
    return Replica(name, str(cluster.base_dir), cluster.port, url, streaming)


@dataclass(frozen=True)
class Login:
    """The primary's connection without its password (what a command line may show), and the password."""

    conninfo: str
    password: str | None


def split_password(primary_url: str, name: str) -> Login:
    """The connection for the base backup, named so that the primary lists it, password apart."""
    try:
        params = conninfo_to_dict(make_conninfo(primary_url, application_name=name))
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"invalid primary URL: {redact(str(exc))}") from exc
    password = params.pop("password", None) or os.environ.get("PGPASSWORD")
    return Login(make_conninfo(**{k: str(v) for k, v in params.items()}), str(password) if password else None)


def write_passfile(base_dir: Path, role: str, password: str) -> Path:
    """A passfile for the replication role, private to the cluster's user, beside the data folder
    (outside it: a base backup of the replica must not carry it)."""
    path = base_dir / PASSFILE
    base_dir.mkdir(parents=True, exist_ok=True)
    entry = ":".join(["*", "*", "replication", _pgpass_escape(role), _pgpass_escape(password)])
    write_private(path, (entry + "\n").encode())
    if os.geteuid() == 0:  # the server and pg_basebackup run as the cluster's user
        user = pwd.getpwnam(CLUSTER_USER)
        os.chown(path, user.pw_uid, user.pw_gid)
    return path


def _pgpass_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:")


def replica_url(primary_url: str, port: int) -> str:
    """The replica as a client reaches it: the primary's role and database, on this machine."""
    params = conninfo_to_dict(primary_url)
    user, dbname = params.get("user"), params.get("dbname") or "postgres"
    who = f"{quote(str(user), safe='')}@" if user else ""
    return f"postgresql://{who}127.0.0.1:{port}/{quote(str(dbname), safe='')}"


def _complete_config(cluster: EmbeddedCluster, role: str) -> None:
    """A primary whose configuration lives outside its data folder (Debian) sends none: write
    the minimum, and make sure the replica reads its own ``truelabel.conf``."""
    conf = cluster.data_dir / "postgresql.conf"
    include = "include_if_exists = 'truelabel.conf'"
    text = conf.read_text() if conf.exists() else ""
    if include not in text:
        conf.write_text(text + f"\n{include}\n")
    hba = cluster.data_dir / "pg_hba.conf"
    if not hba.exists():
        write_private(hba, hba_rules(role).encode())
    for path in (conf, hba):
        _give_to_cluster_user(cluster, path)


def hba_rules(role: str) -> str:
    """Client authentication for a replica made here: the local socket by the operating system's
    word (peer), TCP by SCRAM password, replication for the replication role only; never trust."""
    quoted = role if re.fullmatch(r"[a-z_][a-z0-9_$]*", role) else '"' + role.replace('"', '""') + '"'
    return ("# written by truelabel-db replica add: passwords (SCRAM) over TCP, never trust\n"
            "local   all          all                       peer\n"
            "host    all          all          127.0.0.1/32 scram-sha-256\n"
            "host    all          all          ::1/128      scram-sha-256\n"
            f"host    replication  {quoted:<12} 127.0.0.1/32 scram-sha-256\n"
            f"host    replication  {quoted:<12} ::1/128      scram-sha-256\n")


def _give_to_cluster_user(cluster: EmbeddedCluster, path: Path) -> None:
    owner = cluster.data_dir.stat()
    os.chown(path, owner.st_uid, owner.st_gid)


def wait_streaming(url: str, seconds: float) -> bool:
    """True once the replica's WAL receiver streams from the primary (waits up to ``seconds``).
    A role without ``pg_read_all_stats`` (a dedicated replication role) sees the receiver but not
    its status: then WAL received from the stream is the proof."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                row = conn.execute("SELECT status, pg_last_wal_receive_lsn() IS NOT NULL "
                                   "FROM pg_stat_wal_receiver").fetchone()
            if row and (row[0] == "streaming" or (row[0] is None and row[1])):
                return True
        except psycopg.OperationalError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
