"""The follower's lag while a migration runs, as the follower recorded it in PostgreSQL.

The follower writes its position and lag in ``truelabel_meta.follow_state`` in the same
transaction as the changes it applies; the age of that row says whether it is still running.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg


@dataclass
class FollowerLag:
    source: str
    position: int
    lag_ms: int | None
    lag_rows: int | None
    rows_per_second: float | None
    seconds_since_apply: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def migration_lag(conn: psycopg.Connection) -> list[FollowerLag]:
    """One entry per followed legacy file; empty when no migration has been followed here."""
    if not conn.execute("SELECT to_regclass('truelabel_meta.follow_state') IS NOT NULL").fetchone()[0]:
        return []
    rows = conn.execute(
        "SELECT source_path, position, lag_ms, lag_rows, rows_per_second, "
        "extract(epoch FROM now() - applied_at)::float FROM truelabel_meta.follow_state "
        "ORDER BY source_path").fetchall()
    return [FollowerLag(r[0], int(r[1]), r[2], r[3], r[4], round(r[5], 1)) for r in rows]
