"""Scans through the cache: no cache work on the way in, and one invalidation per window for
every brand they touched, instead of one per scan."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.fix_twin import Pair
from truelabel_db.cache import LayeredCache, keys
from truelabel_db.cache.invalidation import RULES, Rule
from truelabel_db.hotpaths import PostgresHotPaths, Scan
from truelabel_db.hotpaths.cached import CachedHotPaths
from truelabel_db.hotpaths.scan_invalidation import ScanInvalidations, window_of


@pytest.fixture
def cached(shared_pair: Pair, redis_url: str) -> Iterator[CachedHotPaths]:
    paths = PostgresHotPaths(shared_pair.url, max_size=2)
    cache = LayeredCache(redis_url, paths.pool).start()
    served = CachedHotPaths(paths, cache, listen=False)  # the service's own coalescing alone (counted here)
    yield served
    served.close()
    cache.close()
    paths.close()


def two_brands(paths: PostgresHotPaths) -> list[dict[str, str]]:
    products = [p for p in paths.product_list(200) if p["qr_code"]]
    first = products[0]
    second = next(p for p in products if p["user_id"] != first["user_id"])
    return [first, second]


def test_scans_touch_no_cache_entry_and_queue_one_invalidation_for_all_their_brands(cached: CachedHotPaths) -> None:
    scanned, untouched = two_brands(cached.paths)
    for product in (scanned, untouched):
        cached.cache.set(keys.analytics(product["user_id"], 30), {"cached": True}, 120)
    before = cached.cache.stats.snapshot()
    found = cached.scan_many([Scan(scanned["qr_code"], None, "coalesce")] * 50)
    assert all(p is not None and p["id"] == scanned["id"] for p in found)
    after = cached.cache.stats.snapshot()
    assert {k: after.get(k, 0) - before.get(k, 0) for k in after} == {}   # no lookup, no invalidation yet
    assert cached.cache.get(keys.analytics(scanned["user_id"], 30))[0]     # stale for at most the window
    assert cached.scans.flush() == 1
    assert cached.cache.stats.snapshot()["invalidations"] - before.get("invalidations", 0) == 1
    assert not cached.cache.get(keys.analytics(scanned["user_id"], 30))[0]
    assert cached.cache.get(keys.analytics(untouched["user_id"], 30))[0]


def test_many_brands_in_one_window_cost_one_invalidation(cached: CachedHotPaths) -> None:
    products = [p for p in cached.paths.product_list(300) if p["qr_code"]][:40]
    before = cached.cache.stats.snapshot().get("invalidations", 0)
    for product in products:
        cached.scan(Scan(product["qr_code"], None, "coalesce"))
    assert cached.scans.flush() == len({p["user_id"] for p in products}) > 1
    assert cached.cache.stats.snapshot()["invalidations"] - before == 1


def test_the_window_is_the_rules_delay_and_pending_brands_are_sent_on_close(cached: CachedHotPaths) -> None:
    assert window_of() == 5.0 == max(rule.delay for rule in RULES["scan:create"])
    quick = {**RULES, "scan:create": (Rule("analytics:brand:{userId}:*", delay=0.2),)}
    product = two_brands(cached.paths)[0]
    key = keys.analytics(product["user_id"], 7)
    cached.cache.set(key, {"cached": True}, 120)
    coalescer = ScanInvalidations(cached.cache, quick).start()
    coalescer.note([product["user_id"]])
    deadline = time.monotonic() + 5
    while cached.cache.get(key)[0] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not cached.cache.get(key)[0]
    cached.cache.set(key, {"cached": True}, 120)
    slow = ScanInvalidations(cached.cache, {**RULES, "scan:create": (Rule("analytics:brand:{userId}:*", delay=60),)})
    slow.start().note([product["user_id"]])
    slow.close()                                   # long before its window: sent on the way out
    coalescer.close()
    assert not cached.cache.get(key)[0]
