"""Reading a backup repository: which backups exist, which are complete, which was verified,
and which fail their checks.

Every read checks that what a folder holds belongs to it (the manifest's and the verification
record's backup id); with the key it also checks their seals. ``backup list`` needs no key, so
without one it can only do the first, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from truelabel_db.backup.errors import BackupError, BackupIntegrityError, BackupKeyError
from truelabel_db.backup.keys import key_id
from truelabel_db.backup.manifest import MANIFEST, VERIFICATION, Manifest, Verification
from truelabel_db.backup.storage import Storage


@dataclass(frozen=True)
class Listing:
    """One backup folder: its manifest when complete, its last verification when there was one,
    and what is wrong with it when its checks fail (then neither is trusted)."""

    id: str
    manifest: Manifest | None
    verification: Verification | None
    problem: str | None = None
    sealed: bool | None = None  # seals checked (True), not checked for want of the key (None)

    @property
    def complete(self) -> bool:
        return self.manifest is not None

    @property
    def kind(self) -> str:
        return self.manifest.kind if self.manifest else self.id.split("-", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        m, v = self.manifest, self.verification
        return {"id": self.id, "complete": self.complete, "kind": m.kind if m else None,
                "created_at": m.created_at if m else None, "source": m.source if m else None,
                "stored_bytes": m.stored_bytes if m else None, "files": len(m.files) if m else None,
                "rows": sum(m.row_counts.values()) if m else None, "problem": self.problem,
                "verified": None if v is None else {"ok": v.ok, "at": v.verified_at, "detail": v.detail,
                                                    "sealed": self.sealed}}


def load_manifest(storage: Storage, backup_id: str) -> Manifest:
    """The manifest of ``backup_id`` (checked to be that backup's), or one line saying it is
    unknown or incomplete."""
    if not storage.exists(f"{backup_id}/{MANIFEST}"):
        if backup_id in storage.list_ids():
            raise BackupError(f"backup {backup_id} in {storage.describe()} is incomplete (no manifest)")
        raise BackupError(f"unknown backup id {backup_id!r} in {storage.describe()} (see `backup list`)")
    manifest = Manifest.from_json(storage.get_bytes(f"{backup_id}/{MANIFEST}"), backup_id)
    manifest.check_location(backup_id)
    return manifest


def open_sealed(storage: Storage, backup_id: str, key: bytes) -> Manifest:
    """The manifest, checked to be this backup's and the one written with this key."""
    manifest = load_manifest(storage, backup_id)
    if manifest.key_id != key_id(key):
        raise BackupKeyError(f"wrong backup key for {backup_id}: it was encrypted with key id "
                             f"{manifest.key_id}, the key given has id {key_id(key)}")
    manifest.check_seal(key)
    return manifest


def load_verification(storage: Storage, backup_id: str, manifest: Manifest | None = None,
                      key: bytes | None = None) -> Verification | None:
    """The last verification of ``backup_id``, refused unless it is that backup's; given the key
    (and the manifest), refused unless sealed by it (for that manifest)."""
    name = f"{backup_id}/{VERIFICATION}"
    if not storage.exists(name):
        return None
    record = Verification.from_json(storage.get_bytes(name), backup_id)
    record.check(backup_id, key, manifest)
    return record


def inspect_backup(storage: Storage, backup_id: str, key: bytes | None = None) -> Listing:
    """One folder, with its checks: a failed check is the listing's ``problem``, not an exception."""
    if not storage.exists(f"{backup_id}/{MANIFEST}"):
        return Listing(backup_id, None, None)
    try:
        manifest = load_manifest(storage, backup_id)
        checkable = key is not None and manifest.key_id == key_id(key)
        if checkable:
            manifest.check_seal(key)  # type: ignore[arg-type]
        chosen = key if checkable else None
        verification = load_verification(storage, backup_id, manifest, chosen)
    except BackupIntegrityError as exc:
        return Listing(backup_id, None, None, problem=str(exc))
    return Listing(backup_id, manifest, verification, sealed=True if checkable else None)


def list_backups(storage: Storage, key: bytes | None = None) -> list[Listing]:
    """Every backup folder; seals are checked for the backups made with ``key`` when it is given."""
    storage.check()
    return [inspect_backup(storage, backup_id, key) for backup_id in storage.list_ids()]


def latest_complete(storage: Storage, kind: str = "full", key: bytes | None = None) -> Manifest:
    """The newest complete backup of ``kind``; refused while a newer one of that kind fails its
    checks (falling back to an older backup would hide that someone tampered with the newest)."""
    listings = [b for b in list_backups(storage, key) if b.kind == kind]
    sound = [b.manifest for b in listings if b.manifest is not None]
    if not sound:
        damaged = [b for b in listings if b.problem]
        if damaged:
            raise BackupIntegrityError(f"no sound {kind} backup in {storage.describe()}: {damaged[-1].problem}")
        raise BackupError(f"no complete {kind} backup in {storage.describe()}")
    newest = max(sound, key=lambda m: m.created_at)
    newer = [b for b in listings if b.problem and b.id > newest.id]
    if newer:
        raise BackupIntegrityError(f"the newer backup {newer[-1].id} fails its checks ({newer[-1].problem}); "
                                   f"inspect or delete it before relying on {newest.id}")
    return newest
