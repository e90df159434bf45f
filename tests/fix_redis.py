"""A Redis database of its own per test, on the real server, emptied afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

REDIS_URL = os.environ.get("TRUELABEL_TEST_REDIS_URL", "redis://127.0.0.1:6379")


@pytest.fixture
def redis_url(worker_id: str = "main") -> Iterator[str]:
    """Database 13 of the test server, flushed before and after (tests do not run in parallel)."""
    url = f"{REDIS_URL}/13"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()
