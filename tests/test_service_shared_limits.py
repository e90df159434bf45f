"""Per-client limits are one quota whatever the number of workers: counted in Redis, and in
each worker only while Redis does not answer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
import redis
from fastapi.testclient import TestClient

from tests.fix_auth import ADMIN, bearer
from tests.fix_redis import PrivateRedis
from tests.fix_twin import Pair
from truelabel_db.service import ServiceConfig, create_app
from truelabel_db.service.limits import FailureLimiter, RateLimiter
from truelabel_db.service.shared_limits import PREFIX, SharedCounters

QUIET = dict(warm_on_start=False, refresh_interval=0, warm_interval=0, cache=False)
CLIENT = ("203.0.113.7", 50000)


@contextmanager
def workers(count: int, database: str, redis_url: str, **options: object) -> Iterator[list[TestClient]]:
    """``count`` service processes' apps on one Redis, each seen from the same client address."""
    with ExitStack() as stack:
        yield [stack.enter_context(TestClient(create_app(ServiceConfig(
            database=database, redis_url=redis_url, **{**QUIET, **options})), client=CLIENT))
            for _ in range(count)]


def a_code(client: TestClient) -> str:
    return next(p["qr_code"] for p in client.get("/products?limit=20").json() if p["qr_code"])


def test_two_workers_share_one_scan_quota_per_address(shared_pair: Pair, redis_url: str) -> None:
    with workers(2, shared_pair.url, redis_url, scan_rate=0.01, scan_burst=2) as (first, second):
        code = a_code(first)
        answers = [worker.post("/scans", json={"qr_code": code}).status_code
                   for worker in (first, second, first, second)]
        assert answers == [200, 200, 429, 429]  # before: four 200s, each worker had a burst of 2
        assert redis.Redis.from_url(redis_url).exists(PREFIX + "scan:" + CLIENT[0])


def test_two_workers_share_one_count_of_failed_authentications(shared_pair: Pair, redis_url: str) -> None:
    with workers(2, shared_pair.url, redis_url, auth_failures_per_minute=2, **ADMIN) as (first, second):
        made_up = bearer("tl_" + "x" * 40)
        assert first.get("/validations/queue", headers=made_up).status_code == 401
        assert second.get("/validations/queue", headers=made_up).status_code == 401
        limited = first.get("/validations/queue", headers=made_up)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1  # before: 401, its count was 1


def test_a_bucket_refills_at_the_rate_on_redis_clock(redis_url: str) -> None:
    async def run() -> tuple[float, float, float]:
        shared = SharedCounters(redis_url)
        limiter = RateLimiter(rate=10.0, burst=1, shared=shared)
        try:
            first, second = await limiter.admit("198.51.100.1"), await limiter.admit("198.51.100.1")
            await asyncio.sleep(second + 0.02)
            return first, second, await limiter.admit("198.51.100.1")
        finally:
            await shared.close()

    first, second, refilled = asyncio.run(run())
    assert first == 0.0 and 0 < second <= 0.1 and refilled == 0.0


def test_a_client_key_lives_no_longer_than_its_bucket_takes_to_fill(redis_url: str) -> None:
    async def run() -> None:
        shared = SharedCounters(redis_url)
        try:
            for _ in range(3):
                await shared.take("198.51.100.2", 2.0, 4)  # three of four tokens: full again in 1.5 s
        finally:
            await shared.close()

    asyncio.run(run())
    left = redis.Redis.from_url(redis_url).pttl(PREFIX + "scan:198.51.100.2")
    assert 1000 < left <= 1500


@pytest.mark.slow
def test_while_redis_does_not_answer_each_worker_counts_alone_then_shares_again() -> None:
    server = PrivateRedis()   # not started yet: nothing listens on its port

    async def admit(limiter: RateLimiter) -> float:
        return await limiter.admit("198.51.100.3")

    async def run() -> None:
        shared = SharedCounters(server.url, pause=0.2)
        limiter = RateLimiter(rate=0.01, burst=1, shared=shared)
        try:
            assert await admit(limiter) == 0.0 and await admit(limiter) > 0  # this worker's own bucket
            assert shared.fallbacks >= 1
            server.start()
            await asyncio.sleep(0.3)
            assert await admit(limiter) == 0.0   # Redis's bucket, empty of history
            assert await admit(limiter) > 0
            assert redis.Redis.from_url(server.url).exists(PREFIX + "scan:198.51.100.3")
        finally:
            await shared.close()

    try:
        asyncio.run(run())
    finally:
        server.stop()


def test_failures_are_counted_in_the_worker_when_redis_does_not_answer() -> None:
    async def run() -> float:
        shared = SharedCounters("redis://127.0.0.1:1/0")
        failures = FailureLimiter(2, shared=shared)
        try:
            await failures.count("198.51.100.4")
            await failures.count("198.51.100.4")
            return await failures.check("198.51.100.4")
        finally:
            await shared.close()

    assert asyncio.run(run()) > 0


def test_a_rate_past_a_million_a_second_is_still_counted_in_redis(redis_url: str) -> None:
    async def run() -> tuple[float | None, int]:
        shared = SharedCounters(redis_url)
        try:
            return await shared.take("198.51.100.5", 5e6, 1), shared.fallbacks
        finally:
            await shared.close()

    assert asyncio.run(run()) == (0.0, 0)  # before: "invalid expire time", and the worker counted alone


def test_a_redis_that_never_answers_gets_a_few_connections_not_one_per_scan() -> None:
    """A server that accepts and then says nothing (a Redis stuck in a long command, a black-holed
    address): every scan is still answered, by this worker's count, over a bounded number of
    connections (4 here, 64 by default)."""
    async def run() -> tuple[int, list[float]]:
        accepted: list[asyncio.StreamWriter] = []

        async def mute(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)

        server = await asyncio.start_server(mute, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        shared = SharedCounters(f"redis://127.0.0.1:{port}/0", connections=4)
        limiter = RateLimiter(rate=1000.0, burst=1000, shared=shared)
        try:
            waits = await asyncio.gather(*(limiter.admit(f"198.51.100.{n}") for n in range(50)))
            return len(accepted), list(waits)
        finally:
            await shared.close()
            for writer in accepted:
                writer.close()
            server.close()
            await server.wait_closed()

    connections, waits = asyncio.run(run())
    assert waits == [0.0] * 50          # every scan answered (this worker's buckets)
    assert 1 <= connections <= 4        # before: one connection per scan in flight, 50 here
