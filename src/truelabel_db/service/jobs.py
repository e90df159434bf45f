"""The service's periodic work: the dashboard view, cache warming, the cache table's purge.

Several worker processes may run the same schedule; the dashboard refresh takes a
transaction-level advisory lock first, so only one of them refreshes at a time and the others
skip. The refresh itself is CONCURRENTLY (``refresh_dashboard_stats``), so readers of the view
never wait for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from psycopg import sql

from truelabel_db.cache.warming import Warmer
from truelabel_db.hotpaths import PostgresHotPaths
from truelabel_db.hotpaths.cached import CachedHotPaths
from truelabel_db.service.backend import Backend

REFRESH_LOCK = 0x74_6C_64_62  # "tldb": one refresher at a time across processes


def refresh_dashboard(paths: PostgresHotPaths) -> bool:
    """True if this call refreshed the view; False if another process was already at it."""
    with paths.pool.connection() as conn, conn.transaction():
        locked = conn.execute(sql.SQL("SELECT pg_try_advisory_xact_lock(%s)"), (REFRESH_LOCK,)).fetchone()[0]
        if not locked:
            return False
        conn.execute(sql.SQL("SELECT refresh_dashboard_stats()"))
    return True


class Jobs:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.config = backend.config
        self._stop = threading.Event()
        self.runs: dict[str, int] = {"refresh": 0, "warm": 0, "purge": 0}
        self.failures: dict[str, str] = {}

    def start(self) -> "Jobs":
        if self.config.warm_on_start:
            threading.Thread(target=self._run, args=("warm", self.warm), daemon=True).start()
        self._every(self.config.refresh_interval, "refresh", self.refresh)
        self._every(self.config.warm_interval, "warm", self.warm)
        self._every(600.0, "purge", self.purge)
        return self

    def stop(self) -> None:
        self._stop.set()

    def _every(self, seconds: float, name: str, job: Callable[[], object]) -> None:
        def loop() -> None:
            while not self._stop.wait(seconds):
                self._run(name, job)

        if seconds > 0:
            threading.Thread(target=loop, name=f"job-{name}", daemon=True).start()

    def _run(self, name: str, job: Callable[[], object]) -> None:
        try:
            job()
            self.runs[name] += 1
            self.failures.pop(name, None)
        except Exception as exc:  # the next tick tries again; /health shows the failure
            self.failures[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"

    def refresh(self) -> bool:
        current = self.backend.current
        if not isinstance(current.paths, PostgresHotPaths):
            return False
        refreshed = refresh_dashboard(current.paths)
        if refreshed and isinstance(current.served, CachedHotPaths):
            current.served.invalidator.invalidate("dashboard:refresh", {})
        return refreshed

    def warm(self) -> object:
        served = self.backend.current.served
        if isinstance(served, CachedHotPaths):
            return Warmer(served).warm()
        return None

    def purge(self) -> int:
        cache = self.backend.current.cache
        return cache.l3.purge_expired() if cache is not None and cache.l3 is not None else 0
