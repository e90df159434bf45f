"""The follower's figures as recorded in PostgreSQL, for ``capture status``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from truelabel_db.postgres import connect


def follower_figures(target_url: str, source: Path) -> dict[str, Any] | None:
    with connect(target_url) as conn:
        exists = conn.execute("SELECT to_regclass('truelabel_meta.follow_state') IS NOT NULL").fetchone()[0]
        if not exists:
            return None
        row = conn.execute(
            "SELECT position, lag_rows, lag_ms, rows_per_second, changes_applied, applied_at "
            "FROM truelabel_meta.follow_state WHERE source_path = %s", (str(source.resolve()),)).fetchone()
    if row is None:
        return None
    keys = ("position", "lag_rows", "lag_ms", "rows_per_second", "changes_applied", "applied_at")
    return {k: (str(v) if k == "applied_at" else v) for k, v in zip(keys, row)}
