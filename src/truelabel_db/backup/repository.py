"""Reading a backup repository: which backups exist, which are complete, which was verified."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from truelabel_db.backup.errors import BackupError, BackupKeyError
from truelabel_db.backup.keys import key_id
from truelabel_db.backup.manifest import MANIFEST, VERIFICATION, Manifest, Verification
from truelabel_db.backup.storage import Storage


@dataclass(frozen=True)
class Listing:
    """One backup folder: its manifest when complete, its last verification when there was one."""

    id: str
    manifest: Manifest | None
    verification: Verification | None

    @property
    def complete(self) -> bool:
        return self.manifest is not None

    def to_dict(self) -> dict[str, Any]:
        m, v = self.manifest, self.verification
        return {"id": self.id, "complete": self.complete, "kind": m.kind if m else None,
                "created_at": m.created_at if m else None, "source": m.source if m else None,
                "stored_bytes": m.stored_bytes if m else None, "files": len(m.files) if m else None,
                "rows": sum(m.row_counts.values()) if m else None,
                "verified": None if v is None else {"ok": v.ok, "at": v.verified_at, "detail": v.detail}}


def load_manifest(storage: Storage, backup_id: str) -> Manifest:
    """The manifest of ``backup_id``, or one line saying it is unknown or incomplete."""
    if not storage.exists(f"{backup_id}/{MANIFEST}"):
        if backup_id in storage.list_ids():
            raise BackupError(f"backup {backup_id} in {storage.describe()} is incomplete (no manifest)")
        raise BackupError(f"unknown backup id {backup_id!r} in {storage.describe()} (see `backup list`)")
    return Manifest.from_json(storage.get_bytes(f"{backup_id}/{MANIFEST}"), backup_id)


def open_sealed(storage: Storage, backup_id: str, key: bytes) -> Manifest:
    """The manifest, checked to be the one written with this key."""
    manifest = load_manifest(storage, backup_id)
    if manifest.key_id != key_id(key):
        raise BackupKeyError(f"wrong backup key for {backup_id}: it was encrypted with key id "
                             f"{manifest.key_id}, the key given has id {key_id(key)}")
    manifest.check_seal(key)
    return manifest


def load_verification(storage: Storage, backup_id: str) -> Verification | None:
    name = f"{backup_id}/{VERIFICATION}"
    return Verification.from_json(storage.get_bytes(name)) if storage.exists(name) else None


def list_backups(storage: Storage) -> list[Listing]:
    storage.check()
    out = []
    for backup_id in storage.list_ids():
        manifest = None
        if storage.exists(f"{backup_id}/{MANIFEST}"):
            manifest = Manifest.from_json(storage.get_bytes(f"{backup_id}/{MANIFEST}"), backup_id)
        out.append(Listing(backup_id, manifest, load_verification(storage, backup_id)))
    return out


def latest_complete(storage: Storage, kind: str = "full") -> Manifest:
    complete = [b.manifest for b in list_backups(storage) if b.manifest and b.manifest.kind == kind]
    if not complete:
        raise BackupError(f"no complete {kind} backup in {storage.describe()}")
    return max(complete, key=lambda m: m.created_at)
