"""``pitr restore --target-time``: a new data directory that recovers to that moment.

The base backup chosen is the newest that finished strictly before the target (a target
inside a backup's own copy window cannot be reached consistently). The copy gets a
``recovery.signal``, a ``restore_command`` reading the repository's WAL, the target with an
explicit UTC offset (Barman #881: a target read in the wrong time zone restores the wrong
moment), promotion when the target is reached, and archiving switched off: a restored copy
must never write into production's archive. Starting it is a separate step (``recover`` here,
or ``pg_ctl start``), so the directory can be inspected first.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg

from truelabel_db.backup.errors import RecoveryError
from truelabel_db.backup.manifest import utc_now
from truelabel_db.pitr.repo import BaseBackup, PitrRepo
from truelabel_db.pitr.setup import restore_command
from truelabel_db.postgres import one

COPY_IGNORED = ("postmaster.pid", "postmaster.opts", "standby.signal", "recovery.signal", "backup_manifest")


@dataclass(frozen=True)
class RecoveryPlan:
    base_backup: BaseBackup
    target_time: datetime
    data_dir: Path

    def to_dict(self) -> dict[str, Any]:
        return {"base_backup": self.base_backup.id, "base_finished_at": self.base_backup.finished_at,
                "target_time": self.target_time.isoformat(), "data_dir": str(self.data_dir)}


def parse_target_time(text: str) -> datetime:
    """A moment with an explicit UTC offset; a bare local time is refused rather than guessed."""
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise RecoveryError(f"cannot read the target time {text!r}: use e.g. '2026-11-24 10:15:00+00'") from None
    if moment.tzinfo is None:
        raise RecoveryError(f"the target time {text!r} has no UTC offset: add one, e.g. '+00'")
    return moment


def plan_recovery(repo: PitrRepo, target_time: datetime, data_dir: Path) -> RecoveryPlan:
    repo.require_ready()
    if target_time.tzinfo is None:
        raise RecoveryError("the target time needs a UTC offset")
    if target_time > utc_now():
        raise RecoveryError(f"the target time {target_time.isoformat()} is in the future")
    if data_dir.exists() and any(data_dir.iterdir()):
        raise RecoveryError(f"{data_dir} is not empty: recover into a new data directory")
    candidates = [b for b in repo.base_backups() if b.finished < target_time]
    if not candidates:
        earliest = repo.base_backups()
        hint = f"; the earliest finished at {earliest[0].finished_at}" if earliest else "; run `pitr basebackup`"
        raise RecoveryError(f"no base backup finished before {target_time.isoformat()}{hint}")
    return RecoveryPlan(candidates[-1], target_time, data_dir)


def build_data_dir(repo: PitrRepo, plan: RecoveryPlan, owner_uid: int | None = None) -> RecoveryPlan:
    """Copy the base backup and write the recovery settings; the directory is ready to start."""
    source = repo.base / plan.base_backup.id / "data"
    shutil.copytree(source, plan.data_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*COPY_IGNORED))
    target = plan.target_time.astimezone(timezone.utc).isoformat(sep=" ")
    settings = {"restore_command": restore_command(repo), "recovery_target_time": target,
                "recovery_target_action": "promote", "recovery_target_timeline": "latest",
                "archive_mode": "off"}
    with (plan.data_dir / "postgresql.auto.conf").open("a") as fh:
        fh.write("\n# point-in-time recovery written by truelabel-db\n")
        for name, value in settings.items():
            fh.write(f"{name} = '{value.replace(chr(39), chr(39) * 2)}'\n")
    (plan.data_dir / "recovery.signal").touch()
    uid = owner_uid if owner_uid is not None else repo.wal.stat().st_uid
    if os.geteuid() == 0:
        gid = repo.wal.stat().st_gid if owner_uid is None else uid
        for path in [plan.data_dir, *plan.data_dir.rglob("*")]:
            os.lchown(path, uid, gid)
    plan.data_dir.chmod(0o700)
    return plan


def restore_to_time(repo: PitrRepo, target_time: datetime, data_dir: Path) -> RecoveryPlan:
    return build_data_dir(repo, plan_recovery(repo, target_time, data_dir))


def wait_until_promoted(url: str, timeout: float = 300.0) -> float:
    """Seconds until the recovering server has reached its target and accepts writes."""
    started = time.monotonic()
    while True:
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                if not one(conn.execute("SELECT pg_is_in_recovery()"))[0]:
                    return time.monotonic() - started
        except psycopg.OperationalError:
            pass
        if time.monotonic() - started > timeout:
            raise RecoveryError(f"the recovered server did not finish recovery within {timeout:.0f} s")
        time.sleep(0.2)
