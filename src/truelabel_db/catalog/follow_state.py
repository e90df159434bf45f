"""The follower's position and figures (``truelabel_meta.follow_state``), one row per legacy file.

The position moves in the same transaction as the changes it covers: exactly once across crashes.
Lag and throughput are published beside it for ``capture status`` and the monitor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from truelabel_db.postgres import one


class PositionMoved(Exception):
    """The committed position is not where this follower left it: another follower is running."""


@dataclass(frozen=True)
class FollowFigures:
    source_path: str
    position: int
    lag_rows: int | None
    lag_ms: int | None
    rows_per_second: float | None
    changes_applied: int
    seconds_since_apply: float
    verified_position: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def exists(conn: psycopg.Connection) -> bool:
    return bool(one(conn.execute("SELECT to_regclass('truelabel_meta.follow_state') IS NOT NULL"))[0])


def position(conn: psycopg.Connection, source_path: str) -> int | None:
    row = conn.execute("SELECT position FROM truelabel_meta.follow_state WHERE source_path = %s",
                       (source_path,)).fetchone()
    return None if row is None else int(row[0])


def start_at(conn: psycopg.Connection, source_path: str, start: int) -> None:
    """Record where following starts, unless a position is already recorded."""
    conn.execute("INSERT INTO truelabel_meta.follow_state (source_path, position) VALUES (%s, %s) "
                 "ON CONFLICT DO NOTHING", (source_path, start))


def advance(cur: psycopg.Cursor[Any], source_path: str, to: int, changes: int) -> None:
    """Move the position forward inside the caller's transaction; refuse if it moved meanwhile."""
    cur.execute(
        "UPDATE truelabel_meta.follow_state SET position = %s, applied_at = now(), "
        "changes_applied = changes_applied + %s WHERE source_path = %s AND position < %s",
        (to, changes, source_path, to))
    if cur.rowcount != 1:
        raise PositionMoved("the follow position moved under this follower: is another one running?")


def publish_lag(conn: psycopg.Connection, source_path: str, lag_rows: int, lag_ms: int,
                rows_per_second: float) -> None:
    conn.execute("UPDATE truelabel_meta.follow_state SET lag_rows = %s, lag_ms = %s, rows_per_second = %s "
                 "WHERE source_path = %s", (lag_rows, lag_ms, rows_per_second, source_path))


def record_verified(conn: psycopg.Connection, source_path: str, verified_position: int) -> None:
    """Every change up to this position has been verified equal (the cutover checks only later ones)."""
    conn.execute("UPDATE truelabel_meta.follow_state SET verified_position = greatest(verified_position, %s) "
                 "WHERE source_path = %s", (verified_position, source_path))


def verified_position(conn: psycopg.Connection, source_path: str) -> int | None:
    row = conn.execute("SELECT verified_position FROM truelabel_meta.follow_state WHERE source_path = %s",
                       (source_path,)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def figures(conn: psycopg.Connection, source_path: str | None = None) -> list[FollowFigures]:
    """Every followed file's figures (or one file's), for status reports and the monitor."""
    if not exists(conn):
        return []
    rows = conn.execute(
        "SELECT source_path, position, lag_rows, lag_ms, rows_per_second, changes_applied, "
        "extract(epoch FROM now() - applied_at)::float, verified_position "
        "FROM truelabel_meta.follow_state WHERE %s::text IS NULL OR source_path = %s ORDER BY source_path",
        (source_path, source_path)).fetchall()
    return [FollowFigures(r[0], int(r[1]), r[2], r[3], r[4], int(r[5]), round(float(r[6]), 1), r[7])
            for r in rows]
