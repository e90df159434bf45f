"""Where backups live: one small interface, one module per kind of place.

A backup is a folder of objects named ``<backup id>/<path>``: encrypted files under ``files/``,
then ``manifest.json`` (written last), and ``verification.json`` once a test restore has run.
A local folder and S3-compatible object storage implement the same :class:`Storage`, and the
tests run the same contract against both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from truelabel_db.backup.errors import BackupError

REPO_ENV = "TRUELABEL_BACKUP_REPO"


class Storage(Protocol):
    def describe(self) -> str:
        """Where this is, fit for messages (never with a secret)."""

    def check(self) -> None:
        """Raise :class:`BackupError` unless the place can be read (and written)."""

    def put_file(self, local: Path, name: str) -> None: ...

    def get_file(self, name: str, local: Path) -> None:
        """Fetch ``name``; :class:`BackupError` when it is not there."""

    def put_bytes(self, name: str, data: bytes) -> None: ...

    def get_bytes(self, name: str) -> bytes: ...

    def exists(self, name: str) -> bool: ...

    def list_ids(self) -> list[str]:
        """Every backup folder, complete or not, sorted."""

    def delete_backup(self, backup_id: str) -> None: ...

    def free_bytes(self) -> int | None:
        """Space left, when the place has a limit we can see (object storage has none)."""


def open_storage(spec: str | None, *, create: bool = False) -> Storage:
    """A local folder or ``s3://bucket/prefix``; from the option, else ``TRUELABEL_BACKUP_REPO``."""
    import os

    chosen = spec or os.environ.get(REPO_ENV)
    if not chosen:
        raise BackupError(f"no backup repository: pass --to/--repo or set {REPO_ENV}")
    if chosen.startswith("s3://"):
        from truelabel_db.backup.s3 import S3Storage

        return S3Storage.from_url(chosen)
    if "://" in chosen:
        raise BackupError(f"unsupported backup repository {chosen!r}: use a folder or s3://bucket/prefix")
    from truelabel_db.backup.local import LocalStorage

    return LocalStorage(Path(chosen), create=create)
