"""The follower's lag while a migration runs, as the follower recorded it in PostgreSQL.

The follower writes its position and lag into the catalog in the same
transaction as the changes it applies; the age of that row says whether it is still running.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from truelabel_db.catalog import follow_state


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
    return [FollowerLag(f.source_path, f.position, f.lag_ms, f.lag_rows, f.rows_per_second,
                        f.seconds_since_apply) for f in follow_state.figures(conn)]
