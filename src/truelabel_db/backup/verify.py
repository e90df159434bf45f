"""Proving a backup restorable: seal, checksums, decryption, and a real restore with row counts.

A backup that was never restored is a hope. ``verify`` restores into a scratch database on the
server given (never the production database), compares each table's rows with the manifest,
drops the scratch database, and records the result beside the backup, failed or not, sealed
under the key and bound to the manifest it checked (no record is written with a key that is
not the backup's: it would vouch for nothing).
"""

from __future__ import annotations

import secrets
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from truelabel_db.backup.database import drop_database, sibling_url
from truelabel_db.backup.errors import BackupError, BackupIntegrityError, BackupKeyError
from truelabel_db.backup.logical import restore_backup
from truelabel_db.backup.manifest import VERIFICATION, Manifest, Verification, utc_now
from truelabel_db.backup.repository import open_sealed
from truelabel_db.backup.storage import Storage
from truelabel_db.errors import TrueLabelError


def verify_backup(storage: Storage, backup_id: str, key: bytes, scratch_server_url: str | None,
                  *, jobs: int = 2, work_dir: Path | None = None) -> Verification:
    """Verify ``backup_id``; a PostgreSQL backup needs a server for its scratch database."""
    started = time.perf_counter()
    manifest: Manifest | None = None
    try:
        manifest = open_sealed(storage, backup_id, key)
        if manifest.kind == "sqlite":
            mismatches = _verify_legacy(storage, backup_id, key, work_dir)
        else:
            if scratch_server_url is None:
                raise BackupError("verify needs a PostgreSQL server for its scratch database: pass --target")
            scratch = sibling_url(scratch_server_url, f"truelabel_verify_{secrets.token_hex(4)}")
            try:
                result = restore_backup(storage, backup_id, scratch, key, jobs=jobs, work_dir=work_dir)
            finally:
                drop_database(scratch)
            mismatches = result.mismatches
    except BackupKeyError:
        raise
    except TrueLabelError as exc:
        _record(storage, Verification(backup_id, utc_now().isoformat(), False, str(exc),
                                      round(time.perf_counter() - started, 3)), key, manifest)
        raise
    ok = not mismatches
    detail = "restored; every table's rows match the manifest" if ok else \
        f"restored, but {len(mismatches)} table(s) differ from the manifest"
    verification = Verification(backup_id, utc_now().isoformat(), ok, detail,
                                round(time.perf_counter() - started, 3),
                                {k: list(v) for k, v in mismatches.items()})
    verification = _record(storage, verification, key, manifest)
    if not ok:
        raise BackupIntegrityError(f"backup {backup_id}: {detail}: {', '.join(list(mismatches)[:5])}")
    return verification


def _record(storage: Storage, verification: Verification, key: bytes, manifest: Manifest | None) -> Verification:
    sealed = verification.sealed(key, manifest.mac if manifest is not None else "")
    if sealed.backup_id in storage.list_ids():
        storage.put_bytes(f"{sealed.backup_id}/{VERIFICATION}", sealed.to_json())
    return sealed


def _verify_legacy(storage: Storage, backup_id: str, key: bytes, work_dir: Path | None) -> dict[str, tuple[int, int]]:
    from truelabel_db.backup.legacy import restore_legacy

    folder = Path(tempfile.mkdtemp(prefix="truelabel-verify-", dir=str(work_dir) if work_dir else None))
    try:
        restored = restore_legacy(storage, backup_id, folder / "legacy.db", key)
        conn = sqlite3.connect(restored.path)
        try:
            check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            conn.close()
        if check != "ok":
            raise BackupIntegrityError(f"backup {backup_id}: the restored SQLite file fails integrity_check: {check}")
        return restored.mismatches
    finally:
        shutil.rmtree(folder, ignore_errors=True)

