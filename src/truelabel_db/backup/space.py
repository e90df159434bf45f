"""The pre-check of free space: refuse to start a backup that cannot fit.

A dump never holds indexes, and compression only shrinks it, so the tables' own size plus a
margin is an upper bound on what the staging folder (and a local repository) must take. The
plan's script demanded a fixed 50 GB; a bound from the database itself fails early on a small
disk and does not refuse a small database on a modest one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from truelabel_db.backup.errors import BackupError

MARGIN_BYTES = 64 << 20


def needed_bytes(table_bytes: int) -> int:
    return int(table_bytes * 1.1) + MARGIN_BYTES


def require_free_space(folder: Path, needed: int, what: str) -> None:
    """Raise :class:`BackupError` unless ``folder`` (or its nearest existing parent) has ``needed``."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed:
        raise BackupError(f"not enough free space for the {what} in {folder}: "
                          f"{_mb(free)} free, {_mb(needed)} needed")


def _mb(n: int) -> str:
    return f"{n / (1 << 20):,.0f} MB"
