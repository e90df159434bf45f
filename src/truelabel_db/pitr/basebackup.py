"""``pitr basebackup``: a physical copy of the cluster, the starting point of every recovery.

``pg_basebackup`` in plain format with the WAL it needs streamed alongside (so the copy is
consistent on its own), a manifest with SHA-256 checksums, then ``pg_verifybackup`` checks every
file and the WAL against that manifest before the backup is given its final name. Its finish
time is recorded after the copy ended: a recovery target after it is safe to reach from here.
"""

from __future__ import annotations

import json
import shutil

from truelabel_db.backup.errors import RecoveryError
from truelabel_db.backup.manifest import utc_now
from truelabel_db.backup.pgtools import run_tool, tool_target
from truelabel_db.pitr.repo import BaseBackup, PitrRepo
from truelabel_db.postgres import connect, describe, one


def take_basebackup(url: str, repo: PitrRepo) -> BaseBackup:
    system_id = repo.require_ready()
    with connect(url) as conn:
        found = int(one(conn.execute("SELECT system_identifier FROM pg_control_system()"))[0])
        version = str(conn.info.parameter_status("server_version"))
        start_lsn = str(one(conn.execute("SELECT pg_current_wal_lsn()"))[0])
    if found != system_id:
        raise RecoveryError(f"{describe(url)} is cluster {found}; {repo.root} serves cluster {system_id}")
    started = utc_now()
    backup_id = f"base-{started.strftime('%Y%m%dT%H%M%SZ')}"
    partial = repo.base / f".{backup_id}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    target = tool_target(url)
    try:
        run_tool("pg_basebackup", ["--pgdata", str(partial / "data"), "--format=plain", "--wal-method=stream",
                                   "--checkpoint=fast", "--manifest-checksums=SHA256", "--no-password",
                                   f"--dbname={target.conninfo}"], env=target.env)
        finished = utc_now()
        run_tool("pg_verifybackup", [str(partial / "data")])
        size = sum(p.stat().st_size for p in (partial / "data").rglob("*") if p.is_file())
        info = BaseBackup(backup_id, started.isoformat(), finished.isoformat(), start_lsn, system_id, version, size)
        (partial / "info.json").write_text(json.dumps(info.to_dict(), indent=2) + "\n")
        partial.chmod(0o700)
        partial.rename(repo.base / backup_id)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return info
