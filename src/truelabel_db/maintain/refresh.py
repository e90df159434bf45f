"""``brand_dashboard_stats`` refreshed concurrently (plan §3.3 and §6.2, every 10 minutes).

``REFRESH MATERIALIZED VIEW CONCURRENTLY`` lets the app read the view while it is rebuilt (it
needs the view's plain unique index over all rows, which the schema creates). It allows one
refresh per view at a time, so a second caller would queue behind the first: through
:func:`refresh_dashboard` a second caller skips instead, because the refresh runs as the
``refresh-views`` job under its advisory lock. A view never populated cannot be refreshed
concurrently; its first refresh is a plain one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db.catalog import cache_changes
from truelabel_db.maintain.runner import JobResult, Limits, giving_way, run_job

VIEWS = ("brand_dashboard_stats",)


@dataclass
class RefreshViews:
    name: str = "refresh-views"
    limits: Limits = field(default_factory=lambda: Limits(lock_timeout_ms=2_000,
                                                           statement_timeout_ms=5 * 60_000))
    views: tuple[str, ...] = VIEWS
    schema: str = "public"

    def run(self, conn: psycopg.Connection) -> dict[str, Any]:
        done: dict[str, str] = {}
        for view in self.views:
            populated = conn.execute(
                "SELECT relispopulated FROM pg_class WHERE oid = to_regclass(%s)",
                (sql.Identifier(self.schema, view).as_string(conn),)).fetchone()
            if populated is None:
                done[view] = "missing"
                continue
            mode = sql.SQL("CONCURRENTLY" if populated[0] else "")
            statement = sql.SQL("REFRESH MATERIALIZED VIEW {} {}").format(
                mode, sql.Identifier(self.schema, view))
            giving_way(partial(conn.execute, statement), pauses=self.limits.retry_pauses)
            cache_changes.announce_refresh(conn, view)  # the dashboards cached from it are stale
            done[view] = "concurrently" if populated[0] else "first population"
        return {"views": done}


def refresh_dashboard(conn: psycopg.Connection, *, wait: bool = False) -> JobResult:
    """Refresh the dashboard view now, unless a refresh is already running (then: ``skipped``).

    For the reference service and anyone else who wants fresh figures between the scheduled
    runs. ``conn`` must be an autocommit connection; its session settings are restored after.
    """
    return run_job(conn, RefreshViews(), wait=wait)
