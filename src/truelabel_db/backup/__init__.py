"""Backups: logical PostgreSQL backups and the legacy SQLite file, encrypted, verified, retained.

``logical`` (run, restore) → ``crypto`` (streamed AES-256-GCM) → ``storage`` (``local``, ``s3``)
with a ``manifest`` per backup; ``verify`` restores for real; ``retention`` plans ``prune``;
``notify`` tells someone; ``legacy`` backs up the SQLite file before a migration touches it.
"""

from truelabel_db.backup.errors import (
           BackupError,
           BackupIntegrityError,
           BackupKeyError,
           RecoveryError,
)
from truelabel_db.backup.keys import load_key
from truelabel_db.backup.logical import (
           BackupOptions,
           RestoreResult,
           restore_backup,
           run_backup,
)
from truelabel_db.backup.storage import Storage, open_storage

__all__ = ["BackupError", "BackupIntegrityError", "BackupKeyError", "BackupOptions", "RecoveryError",
           "RestoreResult", "Storage", "load_key", "open_storage", "restore_backup", "run_backup"]
