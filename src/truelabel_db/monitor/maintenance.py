"""When each maintenance job last succeeded, and how its latest run ended, from the run records.

A job that silently stopped running (a dead scheduler, a pg_cron entry removed) shows here as a
last success growing old: the figure to alert on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from truelabel_db.catalog import maintenance_runs


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
    return [JobHealth(*row) for row in maintenance_runs.health(conn)]
