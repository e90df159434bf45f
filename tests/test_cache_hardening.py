"""What the security review of the cache found: request input cannot multiply keys or fill
memory, every spelling of an id is one key that invalidation names, and the cache stays true
when Redis, the listener or the triggers fail."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
import redis
from psycopg_pool import ConnectionPool

from tests.fix_wait import wait_until
from truelabel_db.cache import CacheConfig, LayeredCache, keys, redis_layer
from truelabel_db.cache.memory import MemoryLayer
from truelabel_db.cache.warming import Warmer
from truelabel_db.hotpaths.cached import CachedHotPaths


class Paths:
    """Hot paths that count their calls and answer numbered rows (a stable order, as the SQL)."""

    kind = "fake"

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def product_list(self, limit: int = 1000) -> list[dict[str, int]]:
        self.calls.append(("product_list", limit))
        return [{"n": n} for n in range(limit)]

    def validation_queue(self, limit: int = 100) -> list[dict[str, int]]:
        self.calls.append(("validation_queue", limit))
        return [{"n": n} for n in range(limit)]

    def search(self, text: str, limit: int = 20) -> list[dict[str, int]]:
        self.calls.append(("search", limit))
        return [{"n": n} for n in range(limit)]

    def product(self, product_id: str) -> dict[str, str]:
        self.calls.append(("product", product_id))
        return {"id": product_id}

    def qr_analytics(self, brand_id: str, days: int = 30, now: object = None) -> dict[str, Any]:
        self.calls.append(("qr_analytics", (brand_id, days)))
        return {"brand_id": brand_id, "days": days}


@pytest.fixture
def memory_only() -> Iterator[tuple[CachedHotPaths, Paths]]:
    paths = Paths()
    cache = LayeredCache()
    served = CachedHotPaths(paths, cache, listen=False)  # type: ignore[arg-type]
    try:
        yield served, paths
    finally:
        served.close()
        cache.close()


def test_every_limit_of_the_product_list_is_one_of_a_few_cached_pages(
        memory_only: tuple[CachedHotPaths, Paths]) -> None:
    served, paths = memory_only
    for limit in range(1, 5001, 7):
        assert served.product_list(limit) == [{"n": n} for n in range(limit)]
    asked = {limit for name, limit in paths.calls if name == "product_list"}
    assert asked <= set(keys.PAGES)
    assert len(served.cache.l1) <= len(keys.PAGES)


def test_the_queue_and_search_pages_are_canonical_and_a_large_search_is_not_cached(
        memory_only: tuple[CachedHotPaths, Paths]) -> None:
    served, paths = memory_only
    for limit in range(1, 1001):
        assert len(served.validation_queue(limit)) == limit
    assert {n for name, n in paths.calls if name == "validation_queue"} <= set(keys.PAGES)
    for limit in range(1, 51):
        assert served.search("coffee", limit) == [{"n": n} for n in range(limit)]
    assert {n for name, n in paths.calls if name == "search"} == {20, 50}
    before = len(paths.calls)
    served.search("coffee", 200)
    served.search("coffee", 200)
    assert len(paths.calls) == before + 2  # computed each time, never stored
    assert not keys.bounded(keys.search("coffee", 51))


def test_every_spelling_of_a_uuid_is_one_key_and_the_loader_gets_the_canonical_one(
        memory_only: tuple[CachedHotPaths, Paths]) -> None:
    served, paths = memory_only
    pid = uuid.uuid4()
    spellings = [str(pid), str(pid).upper(), pid.hex, pid.hex.upper()]
    assert {keys.product(s) for s in spellings} == {f"product:{pid}"}
    assert {keys.dashboard(s) for s in spellings} == {f"dashboard:brand:{pid}"}
    assert {keys.analytics(s, 30) for s in spellings} == {f"analytics:brand:{pid}:30"}
    for spelling in spellings:
        assert served.product(spelling) == {"id": str(pid)}
    assert paths.calls == [("product", str(pid))]


def test_other_uuid_spellings_and_odd_analytics_windows_are_not_cached() -> None:
    pid = uuid.uuid4()
    for spelling in (f"urn:uuid:{pid}", f"{{{pid}}}", "-".join(pid.hex[i:i + 4] for i in range(0, 32, 4))):
        assert not keys.bounded(keys.product(spelling)), spelling
        assert not keys.bounded(keys.dashboard(spelling)), spelling
    assert keys.bounded(keys.product("cm1abcdefghijklmnopqrstuv"))  # a legacy cuid is kept as it is
    assert keys.bounded(keys.analytics(str(pid), 30))
    assert not keys.bounded(keys.analytics(str(pid), 17))


def test_the_memory_layers_group_index_stays_as_bounded_as_the_layer() -> None:
    memory = MemoryLayer(max_size=10, max_ttl=60)
    for _ in range(5000):
        memory.set(f"search:{uuid.uuid4().hex[:24]}", ["hit"], 60)
    assert len(memory) == 10
    assert sum(len(members) for members in memory._groups.values()) <= 3 * 10


def test_anonymous_searches_fill_at_most_a_small_search_group(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert redis_layer.cap_of(keys.search("anything", 20)) <= 2_000
    assert redis_layer.cap_of(keys.product(str(uuid.uuid4()))) == redis_layer.GROUP_CAP
    monkeypatch.setitem(redis_layer.GROUP_CAPS, "search:*", 5)
    cache = LayeredCache(redis_url).start()
    client = redis.Redis.from_url(redis_url)
    try:
        for n in range(8):
            cache.get_or_load(keys.search(f"query {n}", 20), lambda: [{"n": 1}], 60)
        assert client.zcard(redis_layer.GROUP + "search:*") == 5
        assert sum(1 for _ in client.scan_iter(match=redis_layer.VALUE + "search:*")) == 5
    finally:
        client.close()
        cache.close()


@pytest.fixture
def layered(redis_url: str, pool: ConnectionPool) -> Iterator[LayeredCache]:
    opened = LayeredCache(redis_url, pool, CacheConfig(stats_flush=0.05)).start()
    try:
        yield opened
    finally:
        opened.close()


def test_an_invalidation_redis_did_not_take_keeps_l2_unread_until_it_is_flushed(layered: LayeredCache) -> None:
    key = keys.product(str(uuid.uuid4()))
    assert layered.get_or_load(key, lambda: "old", 300) == "old"
    assert layered.l2 is not None and layered.l2.get(key) == (True, "old")
    layered.l2._failed()                    # a Redis call just failed: L2 steps aside for a moment
    layered.invalidate([key])               # ... so this invalidation never reaches it
    assert layered.l2_dirty
    wait_until(lambda: layered.l2.available, "Redis is asked again")  # type: ignore[union-attr]
    assert layered.get(key) == (False, None)  # before: "old", from L2, until its TTL
    wait_until(lambda: not layered.l2_dirty, "L2 was flushed once Redis answered")
    assert layered.l2.get(key) == (False, None)
    assert layered.get_or_load(key, lambda: "new", 300) == "new"
    assert layered.l2.get(key) == (True, "new")


@contextmanager
def cache_table_away(pool: ConnectionPool) -> Iterator[None]:
    """The cache table cannot be reached for a moment (a real failure: its name is gone)."""
    with pool.connection() as conn:
        conn.execute("ALTER TABLE cache_entries RENAME TO cache_entries_away")
    try:
        yield
    finally:
        with pool.connection() as conn:
            conn.execute("ALTER TABLE cache_entries_away RENAME TO cache_entries")


def l3_holds(pool: ConnectionPool, key: str) -> bool:
    with pool.connection() as conn:
        return conn.execute("SELECT 1 FROM cache_entries WHERE key = %s", (key,)).fetchone() is not None


def test_an_invalidation_the_cache_table_did_not_take_keeps_l3_unread_until_it_is_emptied(
        redis_url: str, pool: ConnectionPool) -> None:
    cache = LayeredCache(redis_url, pool, CacheConfig(stats_flush=3600)).start()  # repaired by hand below
    key = keys.product(str(uuid.uuid4()))
    try:
        assert cache.get_or_load(key, lambda: "old", 300, persistent=True) == "old"
        assert l3_holds(pool, key)
        with cache_table_away(pool):
            cache.invalidate([key])           # L1 and L2 take it; the cache table does not
        assert cache.l3_dirty and l3_holds(pool, key)
        assert cache.get(key) == (False, None)  # before: "old", from L3, until its TTL
        assert cache.get_or_load(key, lambda: "new", 300, persistent=True) == "new"
        assert cache.repair_l3() and not cache.l3_dirty
        assert not l3_holds(pool, key)
        assert cache.get_or_load(key, lambda: "newer", 300, persistent=True) == "new"  # L1, L2 kept it
        cache.l1.clear()
        assert cache.l2 is not None and cache.l2.flush()
        assert cache.get(key) == (False, None)
    finally:
        cache.close()


def test_what_another_process_copied_from_a_dirty_cache_table_does_not_outlive_the_repair(
        redis_url: str, pool: ConnectionPool) -> None:
    """Process A's invalidation of the cache table times out on a row lock; process B, which does
    not know, reads the old value from the table into Redis and its L1 meanwhile. A's repair must
    leave it nowhere (before: L3 was emptied and the copy in Redis served for its TTL, an hour)."""
    conninfo = pool.conninfo
    impatient = ConnectionPool(conninfo, min_size=1, max_size=2, open=True,
                               kwargs={"autocommit": True, "options": "-c lock_timeout=100"})
    a = LayeredCache(redis_url, impatient, CacheConfig(stats_flush=3600)).start()
    b = LayeredCache(redis_url, pool, CacheConfig(stats_flush=3600)).start()
    key = keys.product(str(uuid.uuid4()))
    try:
        assert a.get_or_load(key, lambda: "old", 3600, persistent=True) == "old"
        with psycopg.connect(conninfo) as holder:   # another session holds the row
            holder.execute("SELECT 1 FROM cache_entries WHERE key = %s FOR UPDATE", (key,))
            a.invalidate([key])                        # L1, L2 and the bus take it; the table's DELETE times out
            assert a.l3_dirty and a.l2_dirty
            wait_until(lambda: b.l1.get(key) is MemoryLayer.MISSING, "B heard the invalidation")
            assert b.get(key) == (True, "old")         # B copies it from the table into Redis and its L1
            assert a.l2 is not None and a.l2.get(key) == (True, "old")
        assert a.repair_l3() and a.repair_l2()
        assert a.l2.get(key) == (False, None) and not l3_holds(pool, key)
        wait_until(lambda: b.get(key) == (False, None), "B's L1 emptied by A's repair")
        assert a.get(key) == (False, None)
    finally:
        a.close()
        b.close()
        impatient.close()


def test_a_flush_the_cache_table_did_not_take_keeps_l3_unread_until_it_is_emptied(
        redis_url: str, pool: ConnectionPool) -> None:
    cache = LayeredCache(redis_url, pool, CacheConfig(stats_flush=0.05)).start()
    key = keys.product(str(uuid.uuid4()))
    try:
        cache.get_or_load(key, lambda: "old", 300, persistent=True)
        with cache_table_away(pool):
            cache.flush()
            assert cache.l3_dirty and cache.get(key) == (False, None)
        wait_until(lambda: not cache.l3_dirty, "the cache table was emptied once it answered")
        assert not l3_holds(pool, key)
    finally:
        cache.close()


def test_the_warmer_does_not_store_a_value_changed_while_it_read_it(layered: LayeredCache) -> None:
    pid = str(uuid.uuid4())
    key = keys.product(pid)

    class Changing:
        def popular_products(self, limit: int) -> list[str]:
            return [pid]

        def product(self, product_id: str) -> dict[str, str]:
            layered.invalidate([key], publish=False)  # the listener swept a change meanwhile
            return {"id": product_id, "name": "old"}

        def validation_queue(self, limit: int) -> list[object]:
            return []

        def brands(self, limit: int) -> list[str]:
            return []

    cached = SimpleNamespace(paths=Changing(), cache=layered)
    assert Warmer(cached).warm().products == 1  # type: ignore[arg-type]
    assert layered.get(key) == (False, None)
    assert layered.l3 is not None and layered.l3.get(key)[0] is False


def test_a_persistent_value_invalidated_while_it_loaded_does_not_reach_the_table(pool: ConnectionPool) -> None:
    cache = LayeredCache(pool=pool).start()  # no Redis, no token: the generation guards L3
    try:
        key = keys.product(str(uuid.uuid4()))

        def changed_meanwhile() -> str:
            cache.invalidate([key], publish=False)
            return "old"

        assert cache.get_or_load(key, changed_meanwhile, 300, persistent=True) == "old"
        assert cache.l3 is not None and cache.l3.get(key)[0] is False
    finally:
        cache.close()


def test_a_suspect_cache_stores_nothing_and_does_not_wait_for_what_l2_holds(layered: LayeredCache) -> None:
    assert layered.l2 is not None
    key = keys.product(str(uuid.uuid4()))
    layered.mark_suspect()
    layered.set(key, "unguarded", 300)
    assert layered.l2.get(key) == (False, None) and layered.l1.get(key) is MemoryLayer.MISSING
    layered.l2.set(key, "from before the outage", 300)
    assert layered.l2.try_lock(key, "another process", 10, 300) is True
    assert layered.get_or_load(key, lambda: "fresh", 300) == "fresh"
