"""What a client sends cannot grow the cache: keys are bounded, groups are the rules' own and
forget expired members, and "not found" stays out of Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from fastapi.testclient import TestClient

from tests.fix_auth import ADMIN, ADMIN_HEADERS
from tests.fix_twin import Pair
from truelabel_db.cache import CacheConfig, LayeredCache
from truelabel_db.cache.invalidation import RULES
from truelabel_db.cache.keys import GROUP_SHAPES, bounded, groups_of, is_group
from truelabel_db.cache.redis_layer import GROUP
from truelabel_db.service import ServiceConfig, create_app

QUIET = dict(warm_on_start=False, refresh_interval=0, warm_interval=0)


@contextmanager
def serving(url: str, redis_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(ServiceConfig(database=url, redis_url=redis_url, **QUIET, **ADMIN)),
                    headers=ADMIN_HEADERS) as client:
        yield client


def redis_bytes(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return sum(client.memory_usage(name) or 0 for name in client.scan_iter(count=1000))
    finally:
        client.close()


def test_three_anonymous_requests_with_huge_ids_leave_redis_almost_empty(shared_pair: Pair, redis_url: str) -> None:
    huge = ":".join(["x" * 8] * 1_000)  # 9 kB, 1,000 segments: each was a Redis set holding the whole key
    with serving(shared_pair.url, redis_url) as client:
        # refused before the cache or the database is asked: not an id of ours (404) or too long (422)
        assert client.get(f"/products/{huge}").status_code in (404, 422)
        assert client.get(f"/brands/{huge}/analytics").status_code in (404, 422)
        assert client.get(f"/brands/{huge}/dashboard").status_code in (404, 422)
    assert redis_bytes(redis_url) < 64 * 1024


def test_not_found_is_not_kept_in_redis(shared_pair: Pair, redis_url: str) -> None:
    missing = str(uuid.uuid4())
    with serving(shared_pair.url, redis_url) as client:
        for _ in range(3):
            assert client.get(f"/products/{missing}").status_code == 404
    client = redis.Redis.from_url(redis_url)
    assert not [k for k in client.scan_iter(match=f"*{missing}*")]
    client.close()


def test_a_key_belongs_only_to_the_groups_rules_name() -> None:
    assert groups_of("products:user:42:page:1") == ["products:user:42:*"]
    assert groups_of("analytics:brand:b1:30") == ["analytics:brand:b1:*"]
    assert groups_of("dashboard:brand:b1") == ["dashboard:*"]
    assert groups_of(f"product:{uuid.uuid4()}") == []


def test_every_group_a_rule_names_is_declared_and_every_declared_group_is_used() -> None:
    used = {".".join("?" if "{" in part else part for part in rule.pattern.split(":"))
            for rules in RULES.values() for rule in rules if is_group(rule.pattern)}
    assert used == {shape.replace(":", ".") for shape in GROUP_SHAPES}


def test_keys_are_bounded_in_length_segments_and_characters() -> None:
    assert bounded(f"product:{uuid.uuid4()}") and bounded("analytics:brand:cm1abc:30")
    assert not bounded("product:" + "a" * 65)
    assert not bounded("product:" + ":".join("a" * 6))
    assert not bounded("product:has space") and not bounded("product:") and not bounded("product:é")


def test_an_unbounded_key_is_loaded_every_time_and_never_stored(redis_url: str) -> None:
    cache = LayeredCache(redis_url).start()
    try:
        calls: list[int] = []
        for _ in range(2):
            assert cache.get_or_load("product:" + "x" * 1000, lambda: calls.append(1) or "v", 60) == "v"
        assert len(calls) == 2 and redis_bytes(redis_url) < 4096
    finally:
        cache.close()


def test_a_group_forgets_members_whose_values_expired(redis_url: str) -> None:
    cache = LayeredCache(redis_url, config=CacheConfig(lock_ttl=0.1)).start()
    client = redis.Redis.from_url(redis_url)
    try:
        for n in range(50):
            cache.get_or_load(f"search:{uuid.uuid4().hex[:24]}", lambda: ["hit"], ttl=0.2)
        time.sleep(0.5)
        cache.get_or_load(f"search:{uuid.uuid4().hex[:24]}", lambda: ["hit"], ttl=60)
        assert client.zcard(GROUP + "search:*") == 1
        assert 0 < client.pttl(GROUP + "search:*") <= 61_000  # the value's TTL and the lock's, not an hour
    finally:
        client.close()
        cache.close()
