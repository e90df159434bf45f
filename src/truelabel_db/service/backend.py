"""Which database the service talks to, and switching it without a restart.

The cutover publishes the primary (Redis, and a file); a task here watches it and, when its
epoch moves, opens the new database and swaps it in. Requests take the current backend once
and use it to the end, so a switch never changes database under a request; the old backend is
closed after a grace period. Writes pass the gate: while it is up they wait (up to
``gate_wait``), then go to whichever database is the primary by then. A write the SQLite
fence refuses (the switch happened between the check and the write) re-reads the primary and
is retried once.

Each backend has two faces. ``aio`` is what request handlers await; ``paths`` and ``served``
are the blocking paths (and the cache over them) that the periodic jobs, ``/health`` and the
cache's loaders use. By default ``aio`` runs the blocking paths in worker threads: on this
machine psycopg's blocking pool answered the hot paths 40 % faster than its async pool
(BENCHMARKS.md, "async or threads"), and the requests that wait long, scans waiting for their
group commit, wait on a future, not in a thread. ``async_pool`` puts the request path on an
async pool of its own instead (the blocking pool then only serves jobs and cache misses).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg

from truelabel_db.cache import CacheConfig, LayeredCache
from truelabel_db.client import AppGate
from truelabel_db.cutover.fence import MESSAGE as FENCE_MESSAGE
from truelabel_db.cutover.gate import GateError, Primary
from truelabel_db.hotpaths import PostgresHotPaths, is_postgres_url, open_hot_paths
from truelabel_db.hotpaths.awaitable import AsyncHotPaths, InThreads, ReadAdmission, in_thread
from truelabel_db.hotpaths.base import HotPaths
from truelabel_db.hotpaths.cached import CachedHotPaths
from truelabel_db.hotpaths.cached_async import AsyncCachedHotPaths
from truelabel_db.hotpaths.postgres_async import AsyncPostgresHotPaths
from truelabel_db.hotpaths.routed import RoutedHotPaths
from truelabel_db.service.config import ServiceConfig
from truelabel_db.service.primary_choice import locator_for

T = TypeVar("T")
GRACE_SECONDS = 30.0


class GateHeld(Exception):
    """The cutover gate stayed up longer than a write may wait."""


class GateUnknown(GateHeld):
    """The cutover gate cannot be read (Redis unreachable): a write is refused, never guessed."""


def data_error(exc: BaseException) -> bool:
    """The database refused a row's data (not an outage): retrying that row alone is useful."""
    return isinstance(exc, (psycopg.DataError, psycopg.IntegrityError, sqlite3.IntegrityError, sqlite3.DataError))


@dataclass
class Current:
    paths: HotPaths                      # blocking: jobs, /health, the cache's loaders
    served: HotPaths | CachedHotPaths    # the blocking paths through the cache (warming)
    aio: AsyncHotPaths                   # what request handlers await
    cache: LayeredCache | None
    epoch: int
    direct: AsyncPostgresHotPaths | None = None
    synchronous_commit: str | None = None


class Backend:
    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.gate = (AppGate(config.redis_url, config.primary_path)
                     if config.redis_url or config.primary_file else None)
        self.switches = 0
        self.gate_waits = 0
        self._refused = -1                # the epoch of a published primary refused (logged once)
        self._switching = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        self._closers: set[asyncio.Task[None]] = set()
        self.current: Current

    @classmethod
    async def start(cls, config: ServiceConfig) -> "Backend":
        backend = cls(config)
        published = await in_thread(backend._published) if config.follow_primary else None
        locator = backend._locator(published) if published else None
        if published is not None and locator is None:
            backend._refused = published.epoch
        epoch = published.epoch if published is not None and locator else 0
        backend.current = await backend._open(locator or config.database, epoch)
        if backend.gate is not None and config.follow_primary:
            backend._watcher = asyncio.create_task(backend._watch(), name="primary-watch")
        return backend

    # -- opening and switching -------------------------------------------------------------
    async def _open(self, locator: str, epoch: int) -> Current:
        paths, served, cache = await in_thread(self._open_blocking, locator)
        direct = None
        admission = ReadAdmission(self.config.max_waiting_reads)
        base: AsyncHotPaths = InThreads(paths, admission=admission)
        if self._async and is_postgres_url(locator):
            direct = await AsyncPostgresHotPaths.open(locator, max_size=self.config.pool_size,
                                                      prepare=self.config.prepare)
            base = direct
        aio: AsyncHotPaths = (AsyncCachedHotPaths(served, base, admission) if isinstance(served, CachedHotPaths)
                              else base)
        primary = paths.primary if isinstance(paths, RoutedHotPaths) else paths
        setting = await in_thread(primary.synchronous_commit) if isinstance(primary, PostgresHotPaths) else None
        return Current(paths, served, aio, cache, epoch, direct, setting)

    @property
    def _async(self) -> bool:
        return self.config.async_pool and not self.config.replicas

    def _open_blocking(self, locator: str) -> tuple[HotPaths, HotPaths | CachedHotPaths, LayeredCache | None]:
        size = max(2, self.config.pool_size // 4) if self._async else self.config.pool_size
        paths: HotPaths
        if self.config.replicas and is_postgres_url(locator):
            paths = RoutedHotPaths(locator, self.config.replicas, max_lag_seconds=self.config.replica_max_lag,
                                   max_size=self.config.pool_size)
        elif is_postgres_url(locator):
            paths = PostgresHotPaths(locator, max_size=size, prepare=self.config.prepare)
        else:
            paths = open_hot_paths(locator, mode=self.config.legacy_mode)
        if not self.config.cache:
            return paths, paths, None
        pool = paths.pool if isinstance(paths, (PostgresHotPaths, RoutedHotPaths)) else None
        cache = LayeredCache(self.config.redis_url, pool, CacheConfig()).start()
        return paths, CachedHotPaths(paths, cache, listen=self.config.db_events), cache

    def _published(self) -> Primary | None:
        if self.gate is None:
            return None
        return self.gate.current_primary()

    def _locator(self, primary: Primary) -> str | None:
        """A configured database only; None when the published primary names another."""
        return locator_for(primary, self.config)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.config.follow_interval)
            try:
                await self.check_primary()
            except Exception:  # keep serving the database we have; try again next tick
                continue

    async def check_primary(self, published: Primary | None = None) -> bool:
        """Switch if the published primary moved; True if it did."""
        if published is None:
            published = await in_thread(self._published)
        if published is None or published.epoch in (self.current.epoch, self._refused):
            return False
        async with self._switching:
            if published.epoch in (self.current.epoch, self._refused):
                return False
            locator = self._locator(published)
            if locator is None:
                self._refused = published.epoch
                return False
            old, self.current = self.current, await self._open(locator, published.epoch)
            self.switches += 1
        self._close_later(old, GRACE_SECONDS)
        return True

    def _close_later(self, old: Current, delay: float) -> None:
        async def close() -> None:
            await asyncio.sleep(delay)
            await _close(old)

        task = asyncio.create_task(close())
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        for task in list(self._closers):
            task.cancel()
        await _close(self.current)

    # -- writes through the gate -----------------------------------------------------------
    async def write(self, action: Callable[[Current], Awaitable[T]]) -> T:
        """Run a write on the primary once the gate lets it through (one gate check per call:
        the group committer calls this once per batch, not once per scan)."""
        for attempt in range(2):
            if self.gate is not None:
                await self.check_primary(await in_thread(self._pass_gate))
            try:
                return await action(self.current)
            except sqlite3.DatabaseError as exc:
                if FENCE_MESSAGE not in str(exc) or attempt == 1:
                    raise
                await self._wait_for_switch()
        raise AssertionError("unreachable")

    def _pass_gate(self) -> Primary | None:
        """Wait while the gate is up; then the published primary, read in the same thread."""
        assert self.gate is not None
        try:
            if self.gate.is_read_only():
                self.gate_waits += 1
                if not self.gate.wait_writable(self.config.gate_wait):
                    raise GateHeld("a cutover holds writes; retry in a few seconds")
        except GateError as exc:
            # Redis is unreachable: a cutover may be holding writes right now. Refuse (503, retry)
            # rather than guess, as client.py tells every app to; reads go on.
            raise GateUnknown("the cutover gate cannot be read (Redis unreachable); retry shortly") from exc
        return self._published() if self.config.follow_primary else None

    async def _wait_for_switch(self) -> None:
        deadline = asyncio.get_running_loop().time() + self.config.gate_wait
        while asyncio.get_running_loop().time() < deadline and not await self.check_primary():
            await asyncio.sleep(0.01)


async def _close(current: Current) -> None:
    def close_blocking() -> None:
        if isinstance(current.served, CachedHotPaths):
            current.served.close()
        if current.cache is not None:
            current.cache.close()
        current.paths.close()

    if current.direct is not None:
        await current.direct.close()
    await in_thread(close_blocking)
