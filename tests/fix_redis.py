"""A Redis database of its own per test, on the real server, emptied afterwards."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

REDIS_URL = os.environ.get("TRUELABEL_TEST_REDIS_URL", "redis://127.0.0.1:6379")
# Which databases of that server the tests own (two checkouts testing at once pick different
# ones): under pytest-xdist each worker takes the next one (gw0: 12, gw1: 13, ... gw3: 15).
REDIS_DB = int(os.environ.get("TRUELABEL_TEST_REDIS_DB", "12"))
REDIS_DATABASES = 16  # redis-server's default


def _worker_database() -> int:
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    if REDIS_DB + worker >= REDIS_DATABASES:
        raise RuntimeError(f"pytest worker {worker} has no Redis database of its own: run fewer workers "
                           f"(-n) or set TRUELABEL_TEST_REDIS_DB lower than {REDIS_DB}")
    return REDIS_DB + worker


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A database of the test server of its own (13 unless told), flushed before and after."""
    url = f"{REDIS_URL}/{_worker_database()}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


class PrivateRedis:
    """A redis-server of the test's own, which the test may stop and start again."""

    def __init__(self) -> None:
        from truelabel_db.embedded import free_port

        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "PrivateRedis":
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        for _ in range(200):
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("the private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis().start()
    try:
        yield server
    finally:
        server.stop()
