"""Logical backups of the PostgreSQL database: ``pg_dump`` out, encrypted, stored; and back in.

A backup is ``pg_dump`` in directory format (parallel jobs, compressed), read from a snapshot
exported by a transaction that also counts every table's rows, so the manifest says exactly how
many rows the dump holds. Each dump file is then sealed (AES-256-GCM, streamed) and stored, and
its plaintext deleted at once, so the staging folder never holds the dump twice. The manifest
goes last; a failure removes whatever part of the backup was stored.

A restore fetches each file, checks its size and SHA-256, decrypts it, runs ``pg_restore`` with
parallel jobs into an empty database (created when missing), and compares every table's rows
with the manifest's.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from truelabel_db.backup.crypto import decrypt_file, encrypt_file, sha256_of
from truelabel_db.backup.database import (
    drop_database,
    ensure_database,
    require_empty,
    row_counts,
    table_bytes,
)
from truelabel_db.backup.errors import BackupError, BackupIntegrityError
from truelabel_db.backup.keys import key_id
from truelabel_db.backup.manifest import (
    MANIFEST,
    FileEntry,
    Manifest,
    new_backup_id,
    utc_now,
)
from truelabel_db.backup.notify import Notifier
from truelabel_db.backup.pgtools import run_tool, tool_target
from truelabel_db.backup.repository import open_sealed
from truelabel_db.backup.space import needed_bytes, require_free_space
from truelabel_db.backup.storage import Storage
from truelabel_db.errors import TrueLabelError
from truelabel_db.postgres import connect, describe, one
from truelabel_db.private import private_folder


@dataclass(frozen=True)
class BackupOptions:
    jobs: int = 4
    compress_level: int = 6
    kind: str = "full"
    work_dir: Path | None = None


@dataclass
class RestoreResult:
    backup_id: str
    target: str
    seconds: float
    row_counts: dict[str, int] = field(default_factory=dict)
    mismatches: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        return {"backup_id": self.backup_id, "target": self.target, "seconds": round(self.seconds, 3),
                "ok": self.ok, "rows": sum(self.row_counts.values()),
                "mismatches": {k: list(v) for k, v in self.mismatches.items()}}


def run_backup(url: str, storage: Storage, key: bytes, options: BackupOptions = BackupOptions(),
               notifier: Notifier | None = None) -> Manifest:
    """Take a full logical backup of ``url`` into ``storage``; notify on success and on failure."""
    notifier = notifier or Notifier()
    started = time.perf_counter()
    try:
        manifest = _backup(url, storage, key, options)
    except TrueLabelError as exc:
        notifier.notify("backup", "failure", source=describe(url), repository=storage.describe(), error=str(exc))
        raise
    notifier.notify("backup", "success", source=describe(url), repository=storage.describe(),
                    backup_id=manifest.id, stored_bytes=manifest.stored_bytes,
                    seconds=round(time.perf_counter() - started, 3))
    return manifest


def _backup(url: str, storage: Storage, key: bytes, options: BackupOptions) -> Manifest:
    if options.jobs < 1:
        raise BackupError("--jobs must be at least 1")
    storage.check()
    moment = utc_now()
    manifest = Manifest(id=free_backup_id(storage, new_backup_id(options.kind, moment)), kind=options.kind,
                        created_at=moment.isoformat(), source=describe(url), key_id=key_id(key),
                        jobs=options.jobs, compression=f"gzip:{options.compress_level}")
    staging = Path(tempfile.mkdtemp(prefix="truelabel-backup-", dir=_work_dir(options.work_dir)))
    try:
        with connect(url) as conn:
            conn.isolation_level, conn.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
            snapshot = one(conn.execute("SELECT pg_export_snapshot()"))[0]
            manifest.row_counts = row_counts(conn)
            manifest.server_version = str(conn.info.parameter_status("server_version"))
            needed = needed_bytes(table_bytes(conn))
            require_free_space(staging, needed, "backup staging")
            free = storage.free_bytes()
            if free is not None and free < needed:
                raise BackupError(f"not enough free space in {storage.describe()}: "
                                  f"{free >> 20:,} MB free, {needed >> 20:,} MB needed")
            _dump(url, staging / "dump", snapshot, options)
            conn.rollback()
        manifest.tool = _tool_version("pg_dump")
        publish_backup(manifest, staging, storage, key)
    except BaseException:
        forget_backup(storage, manifest.id)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _work_dir(chosen: Path | None) -> str | None:
    if chosen is None:
        return None
    return str(private_folder(chosen))


def free_backup_id(storage: Storage, wanted: str) -> str:
    taken, candidate, n = set(storage.list_ids()), wanted, 1
    while candidate in taken:
        n += 1
        candidate = f"{wanted}-{n}"
    return candidate


def _dump(url: str, folder: Path, snapshot: str, options: BackupOptions) -> None:
    target = tool_target(url)
    run_tool("pg_dump", ["--format=directory", f"--jobs={options.jobs}", f"--compress={options.compress_level}",
                         f"--snapshot={snapshot}", f"--file={folder}", f"--dbname={target.conninfo}"],
             env=target.env)


def _tool_version(name: str) -> str:
    return run_tool(name, ["--version"]).stdout.strip()


def seal_and_store(dump: Path, sealed: Path, storage: Storage, backup_id: str, key: bytes) -> list[FileEntry]:
    entries = []
    for plain in sorted(p for p in dump.rglob("*") if p.is_file()):
        name = plain.relative_to(dump).as_posix()
        encrypted = sealed / f"{name}.enc"
        info = encrypt_file(plain, encrypted, key)
        plain.unlink()
        storage.put_file(encrypted, f"{backup_id}/files/{name}.enc")
        encrypted.unlink(missing_ok=True)
        entries.append(FileEntry(name, info.size, info.sha256, info.plain_size))
    return entries


def publish_backup(manifest: Manifest, staging: Path, storage: Storage, key: bytes) -> None:
    """Seal and store what ``staging/dump`` holds, then the sealed manifest, last: a backup
    without a manifest is incomplete by definition."""
    manifest.files = seal_and_store(staging / "dump", staging / "sealed", storage, manifest.id, key)
    manifest.finished_at = utc_now().isoformat()
    manifest.seal(key)
    storage.put_bytes(f"{manifest.id}/{MANIFEST}", manifest.to_json())


def forget_backup(storage: Storage, backup_id: str) -> None:
    """Remove a backup that did not finish, so nothing half-written stays behind."""
    try:
        if backup_id in storage.list_ids():
            storage.delete_backup(backup_id)
    except (BackupError, OSError):
        pass  # without a manifest it is listed as incomplete and pruned later


def fetch_and_decrypt(storage: Storage, manifest: Manifest, key: bytes, folder: Path) -> None:
    """Every file of the backup, checked against the manifest and decrypted into ``folder``."""
    for entry in manifest.files:
        encrypted = folder / ".fetch" / f"{entry.name}.enc"
        storage.get_file(f"{manifest.id}/files/{entry.name}.enc", encrypted)
        size = encrypted.stat().st_size
        if size != entry.size or sha256_of(encrypted) != entry.sha256:
            raise BackupIntegrityError(f"backup {manifest.id}: {entry.name} does not match its checksum "
                                       f"in the manifest ({size} bytes stored, {entry.size} expected)")
        decrypt_file(encrypted, folder / entry.name, key, f"{manifest.id}/{entry.name}")
        encrypted.unlink()


def restore_backup(storage: Storage, backup_id: str, target_url: str, key: bytes, *, jobs: int = 4,
                   work_dir: Path | None = None) -> RestoreResult:
    """Restore ``backup_id`` into ``target_url`` (created if missing, refused unless empty)."""
    started = time.perf_counter()
    manifest = open_sealed(storage, backup_id, key)
    if manifest.kind != "full":
        raise BackupError(f"backup {backup_id} is a {manifest.kind} backup; restore it with `backup restore-legacy`")
    created = ensure_database(target_url)
    try:
        require_empty(target_url)
        _restore_into(storage, manifest, target_url, key, jobs, work_dir)
    except BaseException:
        if created:  # a database we created holds nothing worth keeping after a failed restore
            drop_database(target_url)
        raise
    with connect(target_url) as conn:
        restored = row_counts(conn)
    return RestoreResult(backup_id, describe(target_url), time.perf_counter() - started, restored,
                         compare_counts(manifest.row_counts, restored))


def _restore_into(storage: Storage, manifest: Manifest, target_url: str, key: bytes, jobs: int,
                  work_dir: Path | None) -> None:
    staging = Path(tempfile.mkdtemp(prefix="truelabel-restore-", dir=_work_dir(work_dir)))
    try:
        needed = sum(f.plain_size + f.size for f in manifest.files)
        require_free_space(staging, needed, "restore staging")
        fetch_and_decrypt(storage, manifest, key, staging / "dump")
        target = tool_target(target_url)
        run_tool("pg_restore", ["--format=directory", f"--jobs={max(1, jobs)}", "--no-owner", "--no-privileges",
                                "--exit-on-error", f"--dbname={target.conninfo}", str(staging / "dump")],
                 env=target.env)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def compare_counts(expected: dict[str, int], found: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Per table whose rows differ: (rows in the manifest, rows restored); -1 for a missing table."""
    names = set(expected) | set(found)
    pairs = {n: (expected.get(n, -1), found.get(n, -1)) for n in sorted(names)}
    return {n: pair for n, pair in pairs.items() if pair[0] != pair[1]}
