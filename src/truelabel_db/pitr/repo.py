"""The point-in-time recovery repository: a folder the server can write its WAL into.

    <repo>/pitr.json          the cluster it serves (system identifier), written by ``setup``
    <repo>/bin/archive_wal.py the archive and restore command (standard library only)
    <repo>/wal/               archived WAL segments, owned by the server's system user
    <repo>/base/<id>/         base backups (pg_basebackup, plain format, verified), with info.json

One repository serves one cluster: ``setup`` refuses a repository that holds another's WAL.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from truelabel_db.backup.errors import RecoveryError

MARKER = "pitr.json"


@dataclass(frozen=True)
class PitrRepo:
    root: Path

    @property
    def wal(self) -> Path:
        return self.root / "wal"

    @property
    def base(self) -> Path:
        return self.root / "base"

    @property
    def script(self) -> Path:
        return self.root / "bin" / "archive_wal.py"

    def system_identifier(self) -> int | None:
        marker = self.root / MARKER
        if not marker.exists():
            return None
        return int(json.loads(marker.read_text())["system_identifier"])

    def require_ready(self) -> int:
        if not self.root.is_dir():
            raise RecoveryError(f"PITR repository not found: {self.root}")
        sysid = self.system_identifier()
        if sysid is None:
            raise RecoveryError(f"{self.root} is not a PITR repository: run `pitr setup` first")
        return sysid

    def base_backups(self) -> list["BaseBackup"]:
        found = []
        for info in sorted(self.base.glob("*/info.json")):
            found.append(BaseBackup(**json.loads(info.read_text())))
        return sorted(found, key=lambda b: b.finished_at)

    def newest_wal(self) -> tuple[str, datetime] | None:
        """The newest archived WAL segment and when it was archived: what a recovery can reach."""
        from datetime import timezone

        segments = [p for p in self.wal.glob("*") if p.is_file() and len(p.name) == 24 and not p.name.startswith(".")]
        if not segments:
            return None
        newest = max(segments, key=lambda p: p.name)
        return newest.name, datetime.fromtimestamp(newest.stat().st_mtime, timezone.utc)


@dataclass(frozen=True)
class BaseBackup:
    id: str
    started_at: str
    finished_at: str
    start_lsn: str
    system_identifier: int
    server_version: str
    bytes: int

    @property
    def finished(self) -> datetime:
        return datetime.fromisoformat(self.finished_at)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def python_for_server() -> str:
    """A Python the server's system user can run: the system's, not our virtual environment's."""
    import sys

    found = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    return found or sys.executable
