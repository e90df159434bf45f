"""When each maintenance job last succeeded, and how its latest run ended, from the run records.

A job that silently stopped running (a dead scheduler, a pg_cron entry removed) shows here as a
last success growing old: the figure to alert on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg


@dataclass
class JobHealth:
    job: str
    last_status: str
    last_started: str
    seconds_since_success: float | None
    failures_last_day: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def maintenance_health(conn: psycopg.Connection) -> list[JobHealth]:
    """One entry per job that has ever run here; empty before the first run."""
    if not conn.execute("SELECT to_regclass('truelabel_meta.maintenance_runs') IS NOT NULL").fetchone()[0]:
        return []
    rows = conn.execute(
        """SELECT job,
                  (array_agg(status ORDER BY run_id DESC))[1],
                  max(started_at),
                  extract(epoch FROM now() - max(finished_at) FILTER (WHERE status = 'done'))::float,
                  count(*) FILTER (WHERE status = 'failed' AND started_at > now() - interval '1 day')
             FROM truelabel_meta.maintenance_runs GROUP BY job ORDER BY job""").fetchall()
    return [JobHealth(r[0], r[1], str(r[2]), None if r[3] is None else round(r[3], 1), int(r[4])) for r in rows]
