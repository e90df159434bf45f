"""The legacy SQLite file, backed up before any migration step touches it.

SQLite's online backup API copies the file at one point in time while the app keeps writing
(a writer waits on its busy timeout only while pages are copied), which a file copy cannot
promise. The copy is checked (``quick_check``), its rows counted, then sealed and stored like a
PostgreSQL backup: same repository, same manifest, same ``verify``. This is the backup the
migration's first checkpoint rests on.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from truelabel_db.backup.errors import BackupError
from truelabel_db.backup.keys import key_id
from truelabel_db.backup.logical import (
    compare_counts,
    fetch_and_decrypt,
    forget_backup,
    free_backup_id,
    publish_backup,
)
from truelabel_db.backup.manifest import Manifest, new_backup_id, utc_now
from truelabel_db.backup.notify import Notifier
from truelabel_db.backup.repository import open_sealed
from truelabel_db.backup.space import require_free_space
from truelabel_db.backup.storage import Storage
from truelabel_db.errors import TrueLabelError
from truelabel_db.legacy.source import check_is_sqlite, take_snapshot
from truelabel_db.private import private_folder
from truelabel_db.sqlite_sql import quote_ident

SNAPSHOT_NAME = "legacy.db"


@dataclass(frozen=True)
class RestoredLegacy:
    path: Path
    row_counts: dict[str, int]
    mismatches: dict[str, tuple[int, int]]


def sqlite_row_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                            "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {n: int(conn.execute(f"SELECT count(*) FROM {quote_ident(n)}").fetchone()[0]) for n in names}
    finally:
        conn.close()


def backup_legacy(source: Path, storage: Storage, key: bytes, *, work_dir: Path | None = None,
                  notifier: Notifier | None = None) -> Manifest:
    """Snapshot ``source`` with the online backup API, then seal and store it."""
    notifier = notifier or Notifier()
    try:
        manifest = _backup_legacy(source, storage, key, work_dir)
    except TrueLabelError as exc:
        notifier.notify("backup", "failure", source=str(source), repository=storage.describe(), error=str(exc))
        raise
    notifier.notify("backup", "success", source=str(source), repository=storage.describe(),
                    backup_id=manifest.id, stored_bytes=manifest.stored_bytes)
    return manifest


def _backup_legacy(source: Path, storage: Storage, key: bytes, work_dir: Path | None) -> Manifest:
    check_is_sqlite(source)
    storage.check()
    moment = utc_now()
    manifest = Manifest(id=free_backup_id(storage, new_backup_id("sqlite", moment)), kind="sqlite",
                        created_at=moment.isoformat(), source=str(source.resolve()), key_id=key_id(key),
                        tool=f"SQLite {sqlite3.sqlite_version} online backup API")
    if work_dir is not None:
        private_folder(work_dir)
    staging = Path(tempfile.mkdtemp(prefix="truelabel-legacy-", dir=str(work_dir) if work_dir else None))
    try:
        require_free_space(staging, source.stat().st_size * 2, "legacy snapshot")
        snapshot = staging / "dump" / SNAPSHOT_NAME
        take_snapshot(source, snapshot)
        manifest.row_counts = sqlite_row_counts(snapshot)
        publish_backup(manifest, staging, storage, key)
    except BaseException:
        forget_backup(storage, manifest.id)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def restore_legacy(storage: Storage, backup_id: str, destination: Path, key: bytes) -> RestoredLegacy:
    """Write the backed-up SQLite file to ``destination`` (which must not exist) and count its rows."""
    manifest = open_sealed(storage, backup_id, key)
    if manifest.kind != "sqlite":
        raise BackupError(f"backup {backup_id} is a {manifest.kind} PostgreSQL backup; use `restore`")
    if destination.exists():
        raise BackupError(f"{destination} already exists: restore the legacy file to a new path")
    staging = Path(tempfile.mkdtemp(prefix="truelabel-legacy-restore-", dir=str(destination.parent)))
    try:
        fetch_and_decrypt(storage, manifest, key, staging)
        (staging / SNAPSHOT_NAME).replace(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    counts = sqlite_row_counts(destination)
    return RestoredLegacy(destination, counts, compare_counts(manifest.row_counts, counts))

