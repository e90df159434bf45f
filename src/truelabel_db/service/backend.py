"""Which database the service talks to, and switching it without a restart.

The cutover publishes the primary (Redis, and a file); a thread here watches it and, when its
epoch moves, opens the new database and swaps it in. Requests take the current backend once
and use it to the end, so a switch never changes database under a request; the old backend is
closed after a grace period. Writes pass the gate: while it is up they wait (up to
``gate_wait``), then go to whichever database is the primary by then. A write the SQLite
fence refuses (the switch happened between the check and the write) re-reads the primary and
is retried once.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from truelabel_db.cache import CacheConfig, LayeredCache
from truelabel_db.client import AppGate
from truelabel_db.cutover.fence import MESSAGE as FENCE_MESSAGE
from truelabel_db.cutover.gate import GateError, Primary
from truelabel_db.hotpaths import PostgresHotPaths, is_postgres_url, open_hot_paths
from truelabel_db.hotpaths.base import HotPaths
from truelabel_db.hotpaths.cached import CachedHotPaths
from truelabel_db.hotpaths.routed import RoutedHotPaths
from truelabel_db.service.config import ServiceConfig

T = TypeVar("T")
GRACE_SECONDS = 30.0


class GateHeld(Exception):
    """The cutover gate stayed up longer than a write may wait."""


@dataclass
class Current:
    paths: HotPaths
    served: HotPaths | CachedHotPaths
    cache: LayeredCache | None
    epoch: int


def postgres_url_for(primary: Primary, configured: str | None) -> str:
    """The configured URL (it carries credentials) when it names the same server and database."""
    if configured:
        return configured
    user_host, _, dbname = primary.locator.partition("/")
    return f"postgresql://{user_host}/{dbname}"


class Backend:
    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.gate = (AppGate(config.redis_url, config.primary_path)
                     if config.redis_url or config.primary_file else None)
        published = self._published() if config.follow_primary else None
        locator = self._locator(published) if published else config.database
        self.current = self._open(locator, published.epoch if published else 0)
        self.switches = 0
        self.gate_waits = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    # -- opening and switching -------------------------------------------------------------
    def _open(self, locator: str, epoch: int) -> Current:
        paths: HotPaths
        if self.config.replicas and is_postgres_url(locator):
            paths = RoutedHotPaths(locator, self.config.replicas, max_lag_seconds=self.config.replica_max_lag,
                                   max_size=self.config.pool_size)
        else:
            paths = open_hot_paths(locator, mode=self.config.legacy_mode, pool_size=self.config.pool_size)
        cache = None
        served: HotPaths | CachedHotPaths = paths
        if self.config.cache:
            pool = paths.pool if isinstance(paths, (PostgresHotPaths, RoutedHotPaths)) else None
            cache = LayeredCache(self.config.redis_url, pool, CacheConfig()).start()
            served = CachedHotPaths(paths, cache)
        return Current(paths, served, cache, epoch)

    def _published(self) -> Primary | None:
        if self.gate is None:
            return None
        return self.gate.current_primary()

    def _locator(self, primary: Primary) -> str:
        if primary.kind == "postgresql":
            return postgres_url_for(primary, self.config.postgres_url or
                                    (self.config.database if is_postgres_url(self.config.database) else None))
        return primary.locator

    def follow(self) -> "Backend":
        if self.gate is not None and self.config.follow_primary:
            self._watcher = threading.Thread(target=self._watch, name="primary-watch", daemon=True)
            self._watcher.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.config.follow_interval):
            try:
                self.check_primary()
            except Exception:  # keep serving the database we have; try again next tick
                continue

    def check_primary(self) -> bool:
        """Switch if the published primary moved; True if it did."""
        published = self._published()
        if published is None or published.epoch == self.current.epoch:
            return False
        with self._lock:
            if published.epoch == self.current.epoch:
                return False
            old, self.current = self.current, self._open(self._locator(published), published.epoch)
            self.switches += 1
        threading.Timer(GRACE_SECONDS, _close, args=(old,)).start()
        return True

    def close(self) -> None:
        self._stop.set()
        _close(self.current)

    # -- writes through the gate -----------------------------------------------------------
    def write(self, action: Callable[[Current], T]) -> T:
        for attempt in range(2):
            self._pass_gate()
            self.check_primary()
            try:
                return action(self.current)
            except sqlite3.DatabaseError as exc:
                if FENCE_MESSAGE not in str(exc) or attempt == 1:
                    raise
                self._wait_for_switch()
        raise AssertionError("unreachable")

    def _pass_gate(self) -> None:
        if self.gate is None:
            return
        try:
            if self.gate.is_read_only():
                self.gate_waits += 1
                if not self.gate.wait_writable(self.config.gate_wait):
                    raise GateHeld("a cutover holds writes; retry in a few seconds")
        except GateError:
            # Redis is unreachable: no gate to honour. Writing is still safe: once a cutover
            # has moved the primary, the SQLite fence refuses the write and we switch.
            pass

    def _wait_for_switch(self) -> None:
        deadline = time.monotonic() + self.config.gate_wait
        while time.monotonic() < deadline and not self.check_primary():
            time.sleep(0.01)


def _close(current: Current) -> None:
    if isinstance(current.served, CachedHotPaths):
        current.served.close()
    if current.cache is not None:
        current.cache.close()
    current.paths.close()
