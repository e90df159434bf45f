"""The layered cache: promotion, expiry, invalidation everywhere, one loader per key, and no
error when Redis goes away."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from psycopg_pool import ConnectionPool

from tests.fix_redis import PrivateRedis
from truelabel_db.cache import CacheConfig, LayeredCache
from truelabel_db.cache.invalidation import Invalidator, plan
from truelabel_db.errors import ConfigError

FAST = CacheConfig(stats_flush=0.2)


@pytest.fixture
def cache(redis_url: str, pool: ConnectionPool) -> Iterator[LayeredCache]:
    opened = LayeredCache(redis_url, pool, FAST).start()
    try:
        yield opened
    finally:
        opened.close()


def key(prefix: str = "product") -> str:
    return f"{prefix}:{uuid.uuid4()}"


class Counting:
    def __init__(self, value: object = "loaded", pause: float = 0.0) -> None:
        self.calls, self.value, self.pause = 0, value, pause
        self._lock = threading.Lock()

    def __call__(self) -> object:
        with self._lock:
            self.calls += 1
        time.sleep(self.pause)
        return self.value


def test_a_redis_hit_is_promoted_to_memory(cache: LayeredCache) -> None:
    k = key()
    cache.l2.set(k, {"n": 1}, 60)
    assert cache.get(k) == (True, {"n": 1})
    assert cache.l1.get(k) == {"n": 1}
    assert cache.stats.snapshot()["l2_hits"] == 1


def test_a_table_hit_is_promoted_to_redis_and_memory(cache: LayeredCache) -> None:
    k = key()
    cache.l3.set(k, {"n": 3}, 600)
    assert cache.get(k) == (True, {"n": 3})
    assert cache.l2.get(k) == (True, {"n": 3}) and cache.l1.get(k) == {"n": 3}


def test_writes_go_through_every_layer_and_only_persistent_ones_reach_the_table(cache: LayeredCache) -> None:
    plain, kept = key(), key()
    cache.set(plain, 1, 60)
    cache.set(kept, 2, 60, persistent=True)
    assert cache.l2.get(plain) == (True, 1) and cache.l3.get(plain)[0] is False
    assert cache.l3.get(kept)[:2] == (True, 2)


def test_entries_expire_in_every_layer(redis_url: str, pool: ConnectionPool) -> None:
    cache = LayeredCache(redis_url, pool, CacheConfig(l1_ttl=0.2))
    try:
        k = key()
        cache.set(k, "v", ttl=1, persistent=True)
        assert cache.l1.get(k) == "v"
        time.sleep(0.3)
        assert cache.l1.get(k) is cache.l1.MISSING and cache.get(k) == (True, "v")  # from L2
        time.sleep(1.0)
        assert cache.get(k) == (False, None)
    finally:
        cache.close()


def test_memory_is_bounded(redis_url: str) -> None:
    cache = LayeredCache(None, None, CacheConfig(l1_size=10))
    for i in range(50):
        cache.set(f"k:{i}", i)
    assert len(cache.l1) == 10 and cache.get("k:49") == (True, 49) and cache.get("k:0") == (False, None)


def test_many_concurrent_misses_make_one_load(cache: LayeredCache, redis_url: str, pool: ConnectionPool) -> None:
    other = LayeredCache(redis_url, pool, FAST)  # another instance: only Redis's lock is shared
    loader = Counting(pause=0.3)
    k = key()
    results: list[object] = []
    threads = [threading.Thread(target=lambda c=c: results.append(c.get_or_load(k, loader, 60)))
               for c in [cache, other] * 10]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert loader.calls == 1 and results == ["loaded"] * 20


def test_a_loader_failure_reaches_every_waiter_and_frees_the_key(cache: LayeredCache) -> None:
    k = key()

    def broken() -> object:
        time.sleep(0.1)
        raise RuntimeError("database down")

    errors: list[BaseException] = []

    def ask() -> None:
        try:
            cache.get_or_load(k, broken, 60)
        except RuntimeError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 5
    assert cache.get_or_load(k, Counting("fine"), 60) == "fine"


def test_a_value_invalidated_while_it_was_computed_is_not_cached(cache: LayeredCache) -> None:
    k = key()

    def slow_then_stale() -> str:
        cache.invalidate([k])  # the data changed while we were reading it
        return "stale"

    assert cache.get_or_load(k, slow_then_stale, 60) == "stale"
    assert cache.get(k) == (False, None) and cache.stats.snapshot()["discarded"] == 1


def test_a_group_invalidation_drops_its_members_from_every_layer_and_nothing_else(cache: LayeredCache) -> None:
    brand, other = uuid.uuid4(), uuid.uuid4()
    mine = [f"products:user:{brand}:page:{n}" for n in (1, 2)]
    theirs = f"products:user:{other}:page:1"
    for k in [*mine, theirs]:
        cache.set(k, k, 60, persistent=True)
    cache.invalidate(groups=[f"products:user:{brand}:*"])
    for k in mine:
        assert cache.get(k) == (False, None)
    assert cache.get(theirs) == (True, theirs)


def test_an_invalidation_reaches_the_memory_of_another_process(cache: LayeredCache, redis_url: str) -> None:
    k = key()
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from truelabel_db.cache import LayeredCache
        cache = LayeredCache({redis_url!r}).start()
        cache.l1.set({k!r}, "old", 60)     # only in this process's memory
        print("ready", flush=True)
        sys.stdin.readline()
        for _ in range(300):
            if cache.l1.get({k!r}) is cache.l1.MISSING:
                print("dropped", flush=True); break
            time.sleep(0.01)
        else:
            print("still there", flush=True)
        cache.close()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    cache.invalidate([k])
    child.stdin.write("go\n")
    child.stdin.flush()
    assert child.stdout.readline().strip() == "dropped"
    child.wait(timeout=10)


def test_without_redis_the_cache_serves_from_memory_the_table_or_the_loader(pool: ConnectionPool) -> None:
    server = PrivateRedis().start()
    cache = LayeredCache(server.url, pool, FAST).start()
    try:
        kept, plain = key(), key()
        cache.set(kept, "persistent", 600, persistent=True)
        assert cache.get_or_load(plain, Counting("first"), 60) == "first"
        server.stop()
        deadline = time.monotonic() + 10
        while cache.bus.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not cache.bus.connected.is_set()
        assert cache.l1.get(plain) is cache.l1.MISSING  # deaf to invalidations: memory emptied
        assert cache.get(kept) == (True, "persistent")   # from the table
        loader = Counting("from the database")
        assert cache.get_or_load(plain, loader, 60) == "from the database" and loader.calls == 1
        cache.invalidate([kept])                          # no error either
        assert cache.get(kept)[0] in (False, True)
    finally:
        cache.close()
        server.stop()


def test_rules_map_events_to_keys_groups_and_delayed_patterns() -> None:
    planned = plan("product:update", {"id": "p1", "userId": "u1", "qrCode": "TL-1"})
    assert planned.keys == ["product:p1", "qr:TL-1", "dashboard:brand:u1"]
    assert planned.groups == ["products:user:u1:*", "products:latest:*", "validations:queue:*",
                              "analytics:brand:u1:*"]
    assert planned.delayed == [("search:*", 1.0)]
    with pytest.raises(ConfigError, match="needs userId"):
        plan("product:update", {"id": "p1"})
    with pytest.raises(ConfigError, match="unknown cache event"):
        plan("product:explode", {})


def test_a_delayed_invalidation_happens_once_after_its_delay(cache: LayeredCache) -> None:
    invalidator = Invalidator(cache)
    searches = [f"search:{uuid.uuid4().hex}" for _ in range(3)]
    for k in searches:
        cache.set(k, "hits", 60)
    before = cache.stats.snapshot().get("invalidations", 0)
    for _ in range(20):
        invalidator.invalidate("product:update", {"id": "p", "userId": "u"})
    assert all(cache.get(k) == (True, "hits") for k in searches)  # not yet
    time.sleep(1.5)
    assert all(cache.get(k) == (False, None) for k in searches)
    assert cache.stats.snapshot()["invalidations"] - before == 21  # 20 immediate + 1 delayed
