"""``pitr setup``: WAL archiving into the repository, configured with ``ALTER SYSTEM``.

It sets ``wal_level`` (kept at ``logical`` if it already is), ``archive_mode``, an
``archive_command`` that never overwrites a segment and fails honestly, and an
``archive_timeout`` that bounds how much committed work can sit in an unarchived segment (the
RPO on a quiet database). ``wal_level`` and ``archive_mode`` take effect only after a restart,
which is reported, not done: restarting production is the operator's call.
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db.backup.errors import RecoveryError
from truelabel_db.pitr.repo import MARKER, PitrRepo, python_for_server
from truelabel_db.postgres import connect, describe, one

SCRIPT_SOURCE = Path(__file__).with_name("archive_wal.py")


@dataclass
class SetupResult:
    repository: str
    system_identifier: int
    settings: dict[str, str] = field(default_factory=dict)
    restart_needed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"repository": self.repository, "system_identifier": self.system_identifier,
                "settings": self.settings, "restart_needed": self.restart_needed}


def archive_command(repo: PitrRepo, system_id: int) -> str:
    return " ".join([shlex.quote(python_for_server()), shlex.quote(str(repo.script)), "push", "%p", "%f",
                     shlex.quote(str(repo.wal)), str(system_id)])


def restore_command(repo: PitrRepo) -> str:
    return " ".join([shlex.quote(python_for_server()), shlex.quote(str(repo.script)), "fetch", "%f", "%p",
                     shlex.quote(str(repo.wal))])


def setup_archiving(url: str, root: Path, *, archive_timeout: str = "60s") -> SetupResult:
    repo = PitrRepo(root.resolve())
    with connect(url, autocommit=True) as conn:
        system_id, data_dir, wal_level = _server_facts(conn)
        known = repo.system_identifier()
        if known is not None and known != system_id:
            raise RecoveryError(f"{repo.root} holds the WAL of cluster {known}, not of {describe(url)} "
                                f"({system_id}): use another repository")
        _prepare(repo, system_id, data_dir)
        running = {n: str(one(conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(n))))[0])
                   for n in ("wal_level", "archive_mode")}
        settings = {"wal_level": "logical" if wal_level == "logical" else "replica", "archive_mode": "on",
                    "archive_command": archive_command(repo, system_id), "archive_timeout": archive_timeout}
        for name, value in settings.items():
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        conn.execute("SELECT pg_reload_conf()")
        pending = [n for n in ("wal_level", "archive_mode") if running[n] != settings[n]]
    return SetupResult(str(repo.root), system_id, settings, pending)


def _server_facts(conn: psycopg.Connection) -> tuple[int, str, str]:
    try:
        system_id = int(one(conn.execute("SELECT system_identifier FROM pg_control_system()"))[0])
        data_dir = str(one(conn.execute("SHOW data_directory"))[0])
    except psycopg.errors.InsufficientPrivilege as exc:
        raise RecoveryError("pitr setup needs a superuser connection (it runs ALTER SYSTEM)") from exc
    wal_level = str(one(conn.execute("SHOW wal_level"))[0])
    return system_id, data_dir, wal_level


def _prepare(repo: PitrRepo, system_id: int, data_dir: str) -> None:
    """Folders, the script and the marker; the WAL folder belongs to the server's system user."""
    import json

    for folder in (repo.root, repo.wal, repo.base, repo.script.parent):
        folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SCRIPT_SOURCE, repo.script)
    repo.script.chmod(0o755)
    repo.root.chmod(0o755)
    (repo.root / MARKER).write_text(json.dumps({"system_identifier": system_id}) + "\n")
    owner = Path(data_dir).stat() if Path(data_dir).exists() else None
    if owner is not None and os.geteuid() == 0:
        os.chown(repo.wal, owner.st_uid, owner.st_gid)
    repo.wal.chmod(0o700)


def archive_status(url: str) -> dict[str, Any]:
    """pg_stat_archiver: what the server says it archived, and how often archiving failed."""
    with connect(url) as conn:
        row = one(conn.execute("SELECT archived_count, last_archived_wal, last_archived_time, failed_count, "
                           "last_failed_wal, last_failed_time FROM pg_stat_archiver"))
        mode = one(conn.execute("SHOW archive_mode"))[0]
    keys = ("archived_count", "last_archived_wal", "last_archived_time", "failed_count", "last_failed_wal",
            "last_failed_time")
    return {"archive_mode": mode, **dict(zip(keys, row, strict=True))}
