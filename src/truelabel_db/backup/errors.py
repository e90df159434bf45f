"""The errors of backups, restores and recovery: each a line a user can act on.

They live beside the backup code (as ``MigrateError`` lives beside the migration) and keep exit
codes of their own, so that a script can tell a bad key from a damaged backup.
"""

from __future__ import annotations

from truelabel_db.errors import ExitCode, TrueLabelError


class BackupError(TrueLabelError):
    """A backup cannot be taken, found, stored or restored (unknown id, no space, tool failed)."""

    exit_code = ExitCode.BACKUP


class BackupKeyError(BackupError):
    """No key, a malformed key, or not the key the backup was encrypted with."""

    exit_code = ExitCode.BACKUP_KEY


class BackupIntegrityError(BackupError):
    """A backup's bytes are not the ones written: a checksum, a tag or the framing disagrees."""

    exit_code = ExitCode.BACKUP_INTEGRITY


class RecoveryError(BackupError):
    """Point-in-time recovery cannot be set up or carried out as asked."""

    exit_code = ExitCode.RECOVERY
