"""A backup's manifest: what it holds, how to check every byte of it, and how many rows to expect.

The manifest is written last, so a backup without one is incomplete by definition (a crash
midway leaves no backup that looks finished). It is stored in clear so that ``backup list``
needs no key, and sealed with an HMAC under the backup key so that nobody can swap a file and
its checksum together. The sealed body holds the backup's id, which is also the name of its
folder: a manifest read from any other folder (an older backup's copied over a newer one, a
folder renamed) is refused, since its files would be restored as a backup they are not. The row
counts were taken in the very snapshot ``pg_dump`` read, which is what lets a test restore
compare counts exactly.

The verification record (the outcome of a test restore) is sealed too, bound to the backup's id
and to the manifest's seal: "verified" cannot be written by someone without the key, nor carried
from one backup to another.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import Any

from truelabel_db.backup.errors import BackupIntegrityError

MANIFEST = "manifest.json"
VERIFICATION = "verification.json"
VERIFICATION_LABEL = b"truelabel-backup-verification-v1\n"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class FileEntry:
    """One stored file: its path inside the backup, and the size and SHA-256 of its stored bytes."""

    name: str
    size: int
    sha256: str
    plain_size: int


@dataclass
class Manifest:
    id: str
    kind: str
    created_at: str
    source: str
    key_id: str
    files: list[FileEntry] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)
    finished_at: str = ""
    server_version: str = ""
    tool: str = ""
    jobs: int = 1
    compression: str = ""
    format_version: int = FORMAT_VERSION
    mac: str = ""

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)

    @property
    def stored_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def body(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.pop("mac")
        return doc

    def seal(self, key: bytes) -> None:
        self.mac = _mac(key, self.body())

    def check_seal(self, key: bytes) -> None:
        if not hmac.compare_digest(self.mac, _mac(key, self.body())):
            raise BackupIntegrityError(f"the manifest of backup {self.id} was altered (its HMAC does not match)")

    def check_location(self, folder: str) -> None:
        """Refuse a manifest found in a folder other than its own backup's."""
        if self.id != folder:
            raise BackupIntegrityError(f"backup {folder}: its manifest belongs to backup {self.id} "
                                       "(copied or moved into this folder); refusing it")

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, backup_id: str) -> "Manifest":
        try:
            doc = json.loads(data)
            files = [FileEntry(**f) for f in doc.pop("files")]
            return cls(files=files, **doc)
        except (ValueError, TypeError, KeyError) as exc:
            raise BackupIntegrityError(f"the manifest of backup {backup_id} is unreadable: {exc}") from exc


def _mac(key: bytes, body: dict[str, Any], label: bytes = b"") -> str:
    """HMAC-SHA256 of the body's canonical JSON; a label keeps one kind of record from passing
    for another (a manifest's input starts with ``{``, never with a label)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, label + canonical, hashlib.sha256).hexdigest()


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


BACKUP_ID = re.compile(r"^[a-z]+-\d{8}T\d{6}Z(-\d+)?$")


def is_backup_id(name: str) -> bool:
    """Backup folders are named by ``new_backup_id``; anything else in a repository is not ours."""
    return BACKUP_ID.match(name) is not None


def new_backup_id(kind: str, moment: datetime) -> str:
    """Ids sort by time: ``full-20261125T101500Z``."""
    return f"{kind}-{moment.astimezone(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"


@dataclass(frozen=True)
class Verification:
    """The result of a test restore, stored beside the backup it speaks for, sealed under the key
    and bound to that backup's manifest (``manifest_mac``; empty when the manifest itself was
    what failed)."""

    backup_id: str
    verified_at: str
    ok: bool
    detail: str
    seconds: float
    mismatched_tables: dict[str, list[int]] = field(default_factory=dict)
    manifest_mac: str = ""
    mac: str = ""

    def body(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.pop("mac")
        return doc

    def sealed(self, key: bytes, manifest_mac: str) -> "Verification":
        bound = replace(self, manifest_mac=manifest_mac, mac="")
        return replace(bound, mac=_mac(key, bound.body(), VERIFICATION_LABEL))

    def check(self, folder: str, key: bytes | None = None, manifest: Manifest | None = None) -> None:
        """Refuse a record of another backup (checked from the id alone) and, given the key and
        the manifest, one not sealed by that key or bound to another manifest."""
        if self.backup_id != folder:
            raise BackupIntegrityError(f"backup {folder}: its verification record belongs to backup "
                                       f"{self.backup_id} (copied into this folder); refusing it")
        if key is None:
            return
        if not self.mac or not hmac.compare_digest(self.mac, _mac(key, self.body(), VERIFICATION_LABEL)):
            raise BackupIntegrityError(f"the verification record of backup {folder} is not sealed by its key "
                                       f"(forged, altered, or older than sealed records): run `backup verify "
                                       f"{folder}` again")
        if manifest is not None and self.manifest_mac and self.manifest_mac != manifest.mac:
            raise BackupIntegrityError(f"the verification record of backup {folder} speaks for another "
                                       "manifest: run `backup verify` again")

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, folder: str) -> "Verification":
        try:
            doc = json.loads(data)
            known = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in doc.items() if k in known})
        except (ValueError, TypeError, AttributeError) as exc:
            raise BackupIntegrityError(f"the verification record of backup {folder} is unreadable: {exc}") from exc
