"""What the security review of the cache found: request input cannot multiply keys or fill
memory, every spelling of an id is one key that invalidation names, and the cache stays true
when Redis, the listener or the triggers fail."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from truelabel_db.cache import LayeredCache, keys, redis_layer
from truelabel_db.cache.memory import MemoryLayer
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
