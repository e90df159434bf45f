"""A backup's manifest: what it holds, how to check every byte of it, and how many rows to expect.

The manifest is written last, so a backup without one is incomplete by definition (a crash
midway leaves no backup that looks finished). It is stored in clear so that ``backup list``
needs no key, and sealed with an HMAC under the backup key so that nobody can swap a file and
its checksum together. The row counts were taken in the very snapshot ``pg_dump`` read, which
is what lets a test restore compare counts exactly.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from truelabel_db.backup.errors import BackupIntegrityError

MANIFEST = "manifest.json"
VERIFICATION = "verification.json"
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


def _mac(key: bytes, body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


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
    """The result of a test restore, stored beside the backup it speaks for."""

    backup_id: str
    verified_at: str
    ok: bool
    detail: str
    seconds: float
    mismatched_tables: dict[str, list[int]] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "Verification":
        return cls(**json.loads(data))
