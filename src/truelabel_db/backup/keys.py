"""Where the backup key comes from, and how a backup names the key it needs.

The key is 32 random bytes, base64-encoded, read from ``TRUELABEL_BACKUP_KEY`` or from a key
file. It is never accepted on a command line (``ps`` shows those to every user) and never
printed: messages name a key only by its id, an HMAC of a fixed label, which tells keys apart
without revealing anything about them. A key file that other users can read is refused, as ssh
refuses such a private key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from truelabel_db.backup.errors import BackupKeyError
from truelabel_db.private import unsafe_key_file_message

KEY_ENV = "TRUELABEL_BACKUP_KEY"
KEY_FILE_ENV = "TRUELABEL_BACKUP_KEY_FILE"
KEY_BYTES = 32


def new_key_text() -> str:
    """A fresh key, as the text to put in the variable or the key file."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def load_key(key_file: Path | None = None) -> bytes:
    """The key from ``key_file``, else ``TRUELABEL_BACKUP_KEY_FILE``, else ``TRUELABEL_BACKUP_KEY``."""
    chosen = key_file or (Path(os.environ[KEY_FILE_ENV]) if os.environ.get(KEY_FILE_ENV) else None)
    if chosen is not None:
        return _read_key_file(chosen)
    text = os.environ.get(KEY_ENV, "").strip()
    if not text:
        raise BackupKeyError(f"no backup key: set {KEY_ENV} (base64 of 32 random bytes) or pass --key-file")
    return decode_key(text, KEY_ENV)


def key_configured(key_file: Path | None = None) -> bool:
    """Whether a key was given at all (``backup list`` checks seals only when one was)."""
    return key_file is not None or bool(os.environ.get(KEY_FILE_ENV)) or bool(os.environ.get(KEY_ENV, "").strip())


def _read_key_file(path: Path) -> bytes:
    try:
        unsafe = unsafe_key_file_message(path, "backup key file")
        text = path.read_text().strip()
    except OSError as exc:
        raise BackupKeyError(f"cannot read the backup key file {path}: {exc.strerror}") from exc
    if unsafe:
        raise BackupKeyError(unsafe)
    return decode_key(text, f"key file {path}")


def decode_key(text: str, origin: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BackupKeyError(f"the backup key in {origin} is not base64") from None
    if len(key) != KEY_BYTES:
        raise BackupKeyError(f"the backup key in {origin} is {len(key)} bytes; it must be {KEY_BYTES}")
    return key


def key_id(key: bytes) -> str:
    """A short public name for a key: equal ids mean the same key, and reveal nothing else."""
    return hmac.new(key, b"truelabel-backup-key-id", hashlib.sha256).hexdigest()[:16]
