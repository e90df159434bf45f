"""Backups in a local folder (or a mounted volume): files renamed into place after an fsync."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from truelabel_db.backup.errors import BackupError
from truelabel_db.backup.manifest import is_backup_id


class LocalStorage:
    def __init__(self, root: Path, *, create: bool = False) -> None:
        self.root = root.resolve()
        if create:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BackupError(f"cannot create the backup folder {root}: {exc.strerror}") from exc

    def describe(self) -> str:
        return str(self.root)

    def check(self) -> None:
        if not self.root.is_dir():
            raise BackupError(f"backup folder not found: {self.root}")
        if not os.access(self.root, os.R_OK | os.W_OK | os.X_OK):
            raise BackupError(f"backup folder {self.root} is not readable and writable")

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if self.root not in path.parents:
            raise BackupError(f"refusing a backup object outside the repository: {name}")
        return path

    def put_file(self, local: Path, name: str) -> None:
        target = self._path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        try:
            os.replace(local, partial) if _same_device(local, target.parent) else shutil.copyfile(local, partial)
            _fsync(partial)
            os.replace(partial, target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise BackupError(f"cannot store {name} in {self.root}: {exc.strerror}") from exc

    def get_file(self, name: str, local: Path) -> None:
        source = self._path(name)
        if not source.is_file():
            raise BackupError(f"{name} is missing from {self.root}")
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, local)

    def put_bytes(self, name: str, data: bytes) -> None:
        target = self._path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(data)
        _fsync(partial)
        os.replace(partial, target)

    def get_bytes(self, name: str) -> bytes:
        source = self._path(name)
        if not source.is_file():
            raise BackupError(f"{name} is missing from {self.root}")
        return source.read_bytes()

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def list_ids(self) -> list[str]:
        self.check()
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and is_backup_id(p.name))

    def delete_backup(self, backup_id: str) -> None:
        shutil.rmtree(self._path(backup_id), ignore_errors=False)

    def free_bytes(self) -> int | None:
        return shutil.disk_usage(self.root).free


def _same_device(path: Path, folder: Path) -> bool:
    return path.stat().st_dev == folder.stat().st_dev


def _fsync(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())
