"""Trim the cache's change log (in ``truelabel_meta``, owned by ``catalog``) to its window.

Every service process trims it as it listens; this job is for the hours when no service runs
and writers still do: the follower during a migration, the app after cutover with the service
down, an operator's batch. Without it the log grows with every write the triggers see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg

from truelabel_db.catalog import cache_changes
from truelabel_db.maintain.runner import Limits


@dataclass
class TrimCacheLog:
    name: str = "trim-cache-log"
    limits: Limits = field(default_factory=lambda: Limits(lock_timeout_ms=2_000,
                                                           statement_timeout_ms=5 * 60_000))
    keep: timedelta = cache_changes.KEEP

    def run(self, conn: psycopg.Connection) -> dict[str, Any]:
        return {"removed": cache_changes.trim(conn, self.keep), "kept_minutes": self.keep.total_seconds() / 60}
