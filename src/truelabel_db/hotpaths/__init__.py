"""True Label's hot paths, on the legacy SQLite or the optimized PostgreSQL, with one answer."""

from __future__ import annotations

from pathlib import Path

from truelabel_db.hotpaths.base import HotPaths, Scan
from truelabel_db.hotpaths.legacy_paths import LegacyHotPaths
from truelabel_db.hotpaths.postgres_paths import PostgresHotPaths

__all__ = ["HotPaths", "LegacyHotPaths", "PostgresHotPaths", "Scan", "open_hot_paths"]


def is_postgres_url(database: str) -> bool:
    return database.startswith(("postgresql://", "postgres://")) or "dbname=" in database


def open_hot_paths(database: str, *, mode: str = "best", pool_size: int = 10) -> HotPaths:
    """A file path means the legacy SQLite; a PostgreSQL URL means the optimized schema."""
    if is_postgres_url(database):
        return PostgresHotPaths(database, max_size=pool_size)
    return LegacyHotPaths(Path(database), mode=mode)
