"""The service's periodic work: the dashboard view, cache warming, the cache table's purge.

Several worker processes may run the same schedule; the dashboard refresh takes a
transaction-level advisory lock first, so only one of them refreshes at a time and the others
skip. The refresh itself is CONCURRENTLY (``refresh_dashboard_stats``), so readers of the view
never wait for it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import redis
from psycopg import sql

from truelabel_db.cache.warming import Warmer
from truelabel_db.hotpaths import PostgresHotPaths
from truelabel_db.hotpaths.cached import CachedHotPaths
from truelabel_db.hotpaths.routed import RoutedHotPaths
from truelabel_db.postgres import one
from truelabel_db.service.backend import Backend

REFRESH_LOCK = 0x74_6C_64_62  # "tldb": one refresher at a time across processes
WARM_CLAIM, WARMED_AT = "tl:cache:warming", "tl:cache:warmed_at"


def _claim(client: redis.Redis, key: str, seconds: float) -> bool:
    try:
        return bool(client.set(key, str(os.getpid()), nx=True, px=max(1, int(seconds * 1000))))
    except redis.RedisError:
        return True  # no Redis to agree through: warming twice is only wasted work


def refresh_dashboard(paths: PostgresHotPaths) -> bool:
    """True if this call refreshed the view; False if another process was already at it.

    The service runs as the least-privilege app role, so it goes through the SECURITY DEFINER
    ``refresh_dashboard_stats()`` and records nothing in ``truelabel_meta``; the maintenance
    job (``truelabel-db maintain run refresh-views``) runs as the owner and records its runs.
    """
    with paths.pool.connection() as conn, conn.transaction():
        locked = one(conn.execute(sql.SQL("SELECT pg_try_advisory_xact_lock(%s)"), (REFRESH_LOCK,)))[0]
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
        paths = current.paths.primary if isinstance(current.paths, RoutedHotPaths) else current.paths
        if not isinstance(paths, PostgresHotPaths):
            return False
        refreshed = refresh_dashboard(paths)
        if refreshed and isinstance(current.served, CachedHotPaths):
            current.served.invalidator.invalidate("dashboard:refresh", {})
        return refreshed

    def warm(self) -> object:
        """One worker warms per interval; the others find the values in Redis."""
        current = self.backend.current
        if not isinstance(current.served, CachedHotPaths):
            return None
        l2 = current.cache.l2 if current.cache is not None else None
        if l2 is not None and l2.available and not _claim(l2.client, WARM_CLAIM, self.config.warm_interval / 2):
            return None
        warmed = Warmer(current.served, popular=self.config.warm_products, brands=self.config.warm_brands).warm()
        if l2 is not None:
            l2.client.set(WARMED_AT, str(time.time()))
        return warmed

    def warmed_at(self) -> float | None:
        """When any worker last finished warming this cache (None: never, or no Redis)."""
        cache = self.backend.current.cache
        if cache is None or cache.l2 is None:
            return None
        try:
            value = cache.l2.client.get(WARMED_AT)
        except redis.RedisError:
            return None
        return float(value) if value else None

    def purge(self) -> int:
        cache = self.backend.current.cache
        return cache.l3.purge_expired() if cache is not None and cache.l3 is not None else 0
