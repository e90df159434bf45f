"""The layered cache of plan §4.1: L1 memory → L2 Redis → L3 PostgreSQL, then the loader.

Reads try each layer in turn and promote a hit to the layers above it. Writes go through
every layer with its TTL (L1 never keeps a value longer than its own bound; L3 only takes
persistent entries). ``get_or_load`` adds stampede protection: within a process one thread
loads a key and the others wait for its result; across processes the Redis lock elects one
loader and the others poll L2 for its value (bounded by ``wait``), loading themselves only if
it never comes. A value whose key was invalidated while it was being computed is returned to
its caller but not cached.

Input cannot grow the cache: a key that is not ``keys.bounded`` is loaded and never stored,
and "not found" (``None``) is kept only in this process's bounded L1, for ``negative_ttl``.

With database events (``listener``), invalidations also come from PostgreSQL itself. A process
whose listener lost its connection is ``suspect``: it empties L1, reads past L2 and L3 to the
database and fills no L1 until the listener has swept the changes it missed.

Nothing here raises because Redis or the cache table is unavailable: a layer that fails is
skipped, and the worst case is the loader, i.e. the database. An invalidation or a flush that
Redis did not take leaves L2 **dirty**: it may hold what was just invalidated, so it is neither
read, nor written, nor filled from L3 until a flush of it succeeds (``repair_l2``, retried by
the stats thread and by the listener); L1 and L3, which took the invalidation, still serve. The
cache table is a shared layer too, and one that missed an invalidation (or the removal of a
value found stale after it was stored) is dirty the same way until it has been emptied
(``repair_l3``). Another process, which does not know, may meanwhile copy the value it still
holds into L2, so L2 is marked with it and emptied after it; each repair tells the other
processes to empty their L1, which may hold what they read from the layer meanwhile.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import psycopg
from psycopg_pool import ConnectionPool

from truelabel_db.cache.bus import InvalidationBus
from truelabel_db.cache.keys import bounded
from truelabel_db.cache.memory import MemoryLayer
from truelabel_db.cache.postgres_layer import PostgresLayer
from truelabel_db.cache.redis_layer import UNCACHEABLE, RedisLayer
from truelabel_db.cache.stats import CacheStats

T = TypeVar("T")


class Misses:
    """Invalidations or flushes a shared layer did not take, ever, and how many of them a later
    successful flush covers: the layer is dirty while some are not covered."""

    def __init__(self) -> None:
        self.failures = 0
        self.repaired = 0

    @property
    def dirty(self) -> bool:
        return self.failures != self.repaired

    def missed(self) -> None:
        self.failures += 1

    def repaired_up_to(self, failures: int) -> None:
        """A flush that began when ``failures`` had been missed succeeded (later ones stay)."""
        self.repaired = max(self.repaired, failures)


@dataclass(frozen=True)
class CacheConfig:
    """The plan's figures: L1 1000 entries for 1 min, L2 5 min by default."""

    l1_size: int = 1000
    l1_ttl: float = 60.0
    default_ttl: float = 300.0
    lock_ttl: float = 10.0      # a loader that dies frees its key after this
    wait: float = 5.0           # how long a waiter waits for another process's load
    poll: float = 0.01
    stats_flush: float = 2.0
    negative_ttl: float = 5.0   # "not found", in L1 only


class LayeredCache:
    def __init__(self, redis_url: str | None = None, pool: ConnectionPool | None = None,
                 config: CacheConfig = CacheConfig()) -> None:
        self.config = config
        self.origin = uuid.uuid4().hex
        self.l1 = MemoryLayer(config.l1_size, config.l1_ttl)
        self.l2 = RedisLayer(redis_url) if redis_url else None
        self.l3 = PostgresLayer(pool) if pool else None
        self.stats = CacheStats()
        self._flights: dict[str, Future[Any]] = {}
        self._flights_lock = threading.Lock()
        self._generation = 0
        self.suspect = False
        self._l2_misses = Misses()
        self._l3_misses = Misses()
        self.bus = (InvalidationBus(redis_url, self.origin, self._remote_invalidation, self._bus_dropped)
                    if redis_url else None)
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_stats, name="cache-stats", daemon=True)

    def start(self) -> "LayeredCache":
        """Listen for other processes' invalidations and publish counters."""
        if self.bus is not None:
            self.bus.start()
        self._flusher.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self.bus is not None:
            self.bus.stop()
        if self._flusher.is_alive():
            self._flusher.join(timeout=3)
        if self.l2 is not None:
            self.l2.add_stats(self.stats.unflushed())
            self.l2.close()

    # -- shared layers that missed an invalidation ----------------------------------------------
    @property
    def l2_dirty(self) -> bool:
        return self._l2_misses.dirty

    @property
    def l3_dirty(self) -> bool:
        return self._l3_misses.dirty

    def _l2_usable(self) -> bool:
        return self.l2 is not None and not self.l2_dirty and self.l2.available

    def _l3_usable(self) -> bool:
        return self.l3 is not None and not self.l3_dirty

    def _l2_missed(self) -> None:
        self._l2_misses.missed()
        self._generation += 1  # a value read from L2 before now is not filled into L1
        self.stats.add("l2_dirty")

    def _l3_missed(self) -> None:
        self._l3_misses.missed()
        if self.l2 is not None:  # another process may copy what L3 still holds into L2 meanwhile:
            self._l2_missed()    # L2 is emptied too, after L3
        self._generation += 1    # a value read from L3 before now is not filled into L1
        self.stats.add("l3_dirty")

    def _publish_flush(self) -> None:
        """Every other process empties its L1 (which may hold what it read from a layer just emptied)."""
        if self.l2 is not None:
            self.l2.publish({"origin": self.origin, "keys": [], "groups": [], "flush": True})

    def repair_l2(self) -> bool:
        """If L2 missed an invalidation: forget all of it (what it missed cannot be named once
        the change is gone from the caller's hands); True when L2 may be used again."""
        if not self.l2_dirty:
            return True
        if self.l2 is None or not self.l2.available:
            return False
        failures = self._l2_misses.failures
        if not self.l2.flush():
            return False
        self._l2_misses.repaired_up_to(failures)  # a failure during the flush keeps it dirty
        self.stats.add("l2_repairs")
        self._publish_flush()  # other processes' L1 may hold what they read from it meanwhile
        return not self.l2_dirty

    def repair_l3(self) -> bool:
        """The same for the cache table: empty it; True when L3 may be used again."""
        if not self.l3_dirty:
            return True
        failures = self._l3_misses.failures
        if not self._l3_try(lambda layer: layer.invalidate_all()):
            return False
        self._l3_misses.repaired_up_to(failures)
        self.stats.add("l3_repairs")
        self._publish_flush()  # L2 is emptied next (repair_l2): it was marked with L3
        return not self.l3_dirty

    # -- reads -----------------------------------------------------------------------------
    def get(self, key: str) -> tuple[bool, Any]:
        if not bounded(key):
            return False, None
        value = self.l1.get(key)
        if value is not MemoryLayer.MISSING:
            self.stats.hit("l1")
            return True, value
        self.stats.miss("l1")
        generation = self._generation
        if self.suspect:
            return False, None
        if self.l2 is not None and self._l2_usable():
            found, value = self.l2.get(key)
            if found:
                self.stats.hit("l2")
                self._fill_l1(key, value, self.config.l1_ttl, generation)
                return True, value
            self.stats.miss("l2")
        if self.l3 is not None and self._l3_usable():
            found, value, left = self.l3.get(key)
            if found:
                self.stats.hit("l3")
                if self.l2 is not None and generation == self._generation and self._l2_usable():
                    self.l2.set(key, value, left)
                self._fill_l1(key, value, left, generation)
                return True, value
            self.stats.miss("l3")
        return False, None

    # -- writes ----------------------------------------------------------------------------
    def set(self, key: str, value: Any, ttl: float | None = None, persistent: bool = False) -> None:
        """An unguarded store, for values the caller knows to be current (tests, tools): nothing
        guards it against a change made since its value was read, so code that reads the
        database to cache (the warmer) uses ``load``. Nothing is stored while ``suspect``."""
        ttl = ttl or self.config.default_ttl
        if not bounded(key) or self.suspect:
            return
        if value is None:
            self._fill_l1(key, None, ttl, self._generation)
            return
        self.l1.set(key, value, ttl)
        if self.l2 is not None and self._l2_usable():
            self.l2.set(key, value, ttl)
        if persistent and self._l3_usable():
            self._l3_set(key, value, ttl)

    def get_or_load(self, key: str, loader: Callable[[], T], ttl: float | None = None,
                    persistent: bool = False) -> T:
        if not bounded(key):
            self.stats.add("unbounded")
            return loader()
        found, value = self.get(key)
        if found:
            return cast(T, value)
        return self._single_flight(key, loader, ttl, persistent)

    def load(self, key: str, loader: Callable[[], T], ttl: float | None = None, persistent: bool = False) -> T:
        """Load and store ``key`` whatever the layers hold (warming): with the same guards as a
        miss in ``get_or_load`` (the load token, the generation), so a change swept while the
        value was read leaves it uncached instead of cached for its TTL."""
        if not bounded(key):
            return loader()
        return self._single_flight(key, loader, ttl, persistent)

    def _single_flight(self, key: str, loader: Callable[[], T], ttl: float | None, persistent: bool) -> T:
        with self._flights_lock:
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = Future()
        assert flight is not None
        if not leader:
            self.stats.add("waits")
            return cast(T, flight.result())
        try:
            value = self._load(key, loader, ttl or self.config.default_ttl, persistent)
            flight.set_result(value)
            return value
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        finally:
            with self._flights_lock:
                self._flights.pop(key, None)

    def _load(self, key: str, loader: Callable[[], T], ttl: float, persistent: bool) -> T:
        generation = self._generation
        if self.suspect:  # what L2 holds or another loader stores may be what we did not hear
            self.stats.add("loads")
            return loader()
        token = uuid.uuid4().hex
        use_l2 = self.l2 is not None and self._l2_usable()
        locked = self.l2.try_lock(key, token, self.config.lock_ttl, ttl) if self.l2 is not None and use_l2 else None
        if locked == UNCACHEABLE:
            self.stats.add("loads")
            return loader()
        if locked is False:
            found, value = self._wait_for_other_loader(key)
            if found:
                self.stats.add("waits")
                self._fill_l1(key, value, ttl, generation)
                return cast(T, value)
        self.stats.add("loads")
        try:
            value = loader()
        except BaseException:
            if locked and self.l2 is not None:
                self.l2.unlock(key, token)
            raise
        if value is None:  # not found: this process's L1 only, briefly
            if locked and self.l2 is not None:
                self.l2.unlock(key, token)
            self._fill_l1(key, None, ttl, generation)
            return cast(T, None)
        # L3 first, so that an invalidation from now on finds it; taken back if the value
        # turns out stale (its token gone, or an invalidation reached this process).
        in_l3 = persistent and self._l3_usable() and self._l3_set(key, value, ttl)
        if locked and self.l2 is not None:
            stale = not self.l2.store_if_ours(key, token, value, ttl)  # the token guards L2 and L3
        else:
            stale = generation != self._generation  # no token: the generation guards both
        if stale:
            self.stats.add("discarded")
            if in_l3:
                self._l3_drop(key)
            return value
        if not locked and self.l2 is not None and self._l2_usable():
            self.l2.set(key, value, ttl)
        self._fill_l1(key, value, ttl, generation)
        return value

    def _wait_for_other_loader(self, key: str) -> tuple[bool, Any]:
        assert self.l2 is not None
        deadline = time.monotonic() + self.config.wait
        while time.monotonic() < deadline:
            time.sleep(self.config.poll)
            found, value = self.l2.get(key)
            if found:
                return True, value
            if not self.l2.available or not self.l2.lock_holder(key):
                return self.l2.get(key)  # stored just now, discarded, or Redis went away
        return False, None

    def _fill_l1(self, key: str, value: Any, ttl: float, generation: int) -> None:
        """Only if no invalidation reached this process since the value was read or loaded,
        and only while this process hears every invalidation (not ``suspect``)."""
        if value is None:
            ttl = min(ttl, self.config.negative_ttl)
        if generation == self._generation and not self.suspect:
            self.l1.set(key, value, ttl)

    def _l3_set(self, key: str, value: Any, ttl: float) -> bool:
        # L3 is a second chance; losing one write to it loses nothing
        return self._l3_try(lambda layer: layer.set(key, value, ttl))

    def _l3_drop(self, key: str) -> None:
        if not self._l3_try(lambda layer: layer.invalidate([key], ())):
            self._l3_missed()  # the stale value it was given stays there until emptied

    def _l3_try(self, operation: Callable[[PostgresLayer], object]) -> bool:
        """Run ``operation`` on L3; False if the database did not take it."""
        if self.l3 is None:
            return True
        try:
            operation(self.l3)
            return True
        except psycopg.Error:
            return False

    # -- invalidation ----------------------------------------------------------------------
    def invalidate(self, keys: Sequence[str] = (), groups: Sequence[str] = (), *, publish: bool = True) -> None:
        """Drop keys and groups from every layer here, and (``publish``) from every other
        process's L1. Database events are heard by every process itself: they do not publish."""
        self._drop_local(list(keys), list(groups))
        self.stats.add("invalidations")
        if self.l2 is not None:
            if self.l2.invalidate(keys, groups) is None:
                self._l2_missed()
            if publish:
                self.l2.publish({"origin": self.origin, "keys": list(keys), "groups": list(groups)})
        if not self._l3_try(lambda layer: layer.invalidate(keys, groups)):
            self._l3_missed()

    def flush(self) -> None:
        """Forget everything in every layer (a truncated table; changes that cannot be named).
        L3 before L2: a reader between the two may copy what L3 still holds into L2."""
        self._generation += 1
        self.l1.clear()
        self.stats.add("flushes")
        failures = self._l3_misses.failures
        if self._l3_try(lambda layer: layer.invalidate_all()):
            self._l3_misses.repaired_up_to(failures)
        else:
            self._l3_missed()
        if self.l2 is not None:
            failures = self._l2_misses.failures
            if self.l2.flush():
                self._l2_misses.repaired_up_to(failures)  # nothing missed before survives a flush
            else:
                self._l2_missed()
            self._publish_flush()

    def mark_suspect(self) -> None:
        """This process may have missed invalidations: empty L1, read past L2 and L3."""
        self.suspect = True
        self._generation += 1
        self.l1.clear()
        self.stats.add("suspect")

    def trust_again(self) -> None:
        """The missed invalidations have been applied: the shared layers may be read again."""
        self.suspect = False

    def _drop_local(self, keys: list[str], groups: list[str]) -> None:
        self._generation += 1
        self.l1.delete(keys, groups)

    def _remote_invalidation(self, keys: list[str], groups: list[str]) -> None:
        self._drop_local(keys, groups)

    def _bus_dropped(self) -> None:
        self._generation += 1
        self.l1.clear()
        self.stats.add("bus_drops")

    # -- counters --------------------------------------------------------------------------
    def _flush_stats(self) -> None:
        while not self._stop.wait(self.config.stats_flush):
            self.repair_l3()
            if self.l2 is not None:
                self.repair_l2()
                self.l2.add_stats(self.stats.unflushed())
