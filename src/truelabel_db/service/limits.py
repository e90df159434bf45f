"""Limits on what an anonymous client may ask: scans per second per address, and sizes.

Scans stay anonymous (a consumer's phone has no key), so the only handle on a client is its
address. Each address has a token bucket: ``rate`` scans a second on average, ``burst`` at once;
past it the answer is 429 with ``Retry-After``. With Redis configured the buckets are kept there
(``shared_limits``), one quota whatever the number of workers; without it, or while it does not
answer, each worker keeps its own (with N workers an address then gets up to N times the rate),
the least recently seen address forgotten first when ``MAX_CLIENTS`` are tracked. A rate of 0
switches the limit off (the load benchmarks send thousands a second from loopback). Behind
a proxy the address is the one uvicorn takes from ``X-Forwarded-For`` for the proxies named by
``serve --forwarded-allow-ips`` (none by default); a proxy that does not set it makes every
client one address.

A bucket is keyed by ``client_key``, not by the address string as given: an IPv6 host usually
holds a whole /64 (2^64 addresses), so IPv6 addresses are grouped by their /64; an IPv4 address
mapped into IPv6 is that IPv4 address; anything that is not an address (a test client's name, a
header a misconfigured proxy forwarded) shares one ``unknown`` bucket, so it cannot mint buckets.

Failed authentications are limited per client the same way (``FailureLimiter``, shared in Redis
too): each one may cost a database lookup, so past ``per_minute`` failures a client is answered
429 until its minute is over.

Sizes are checked before anything touches the database or the cache: identifiers in paths are
at most ``MAX_ID`` characters (a UUID is 36), a scan's body at most ``MAX_SCAN_BODY`` bytes. A
UUID in a path is accepted in two spellings only, 36 characters with hyphens or 32 hex digits
(any case), and served under its canonical one (``ids.canonical_uuid``): Python's ``uuid.UUID``
takes more (``urn:uuid:``, braces) than PostgreSQL does, and every spelling would otherwise be a
cache key and a scope of its own.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from cachetools import TTLCache

from truelabel_db.service.shared_limits import SharedCounters

MAX_ID = 64
MAX_SCAN_BODY = 4 * 1024
MAX_CLIENTS = 100_000
UNKNOWN_CLIENT = "unknown"
IPV6_GROUP = 64
@lru_cache(maxsize=4096)
def client_key(host: str | None) -> str:
    """The bucket a client's address belongs to: an IPv4 address, an IPv6 /64, or ``unknown``."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return UNKNOWN_CLIENT
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_GROUP), strict=False))
    return str(address)


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets by client address; ``take`` says how long to wait (0: go ahead)."""

    def __init__(self, rate: float, burst: int, shared: SharedCounters | None = None) -> None:
        self.rate, self.burst, self.shared = rate, max(1, burst), shared
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self.refused = 0

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    async def admit(self, client: str | None) -> float:
        """``take`` from the bucket every worker shares (in Redis); from this worker's own when
        there is none or Redis does not answer."""
        if not self.enabled:
            return 0.0
        if self.shared is not None:
            wait = await self.shared.take(client_key(client), self.rate, self.burst)
            if wait is not None:
                self.refused += wait > 0
                return wait
        return self.take(client)

    def take(self, client: str | None, now: float | None = None) -> float:
        """Spend one token of ``client``'s bucket; 0.0 if it had one, else seconds until it will."""
        if not self.enabled:
            return 0.0
        now = time.monotonic() if now is None else now
        bucket = self._bucket(client_key(client), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        self.refused += 1
        return (1 - bucket.tokens) / self.rate

    def _bucket(self, client: str, now: float) -> _Bucket:
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = _Bucket(float(self.burst), now)
            if len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(client)
        return bucket


def retry_after(seconds: float) -> str:
    """Whole seconds, at least one: what the header allows."""
    return str(max(1, math.ceil(seconds)))


class FailureLimiter:
    """At most ``per_minute`` failures per client (``client_key``) in a minute from its first;
    bounded (the least recently failed clients are forgotten first). 0 switches it off."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = MAX_CLIENTS, shared: SharedCounters | None = None) -> None:
        self.per_minute, self.shared = per_minute, shared
        self._clock = clock
        # [failures, when its minute started]: mutated in place, so a failure does not extend it
        self._failures: TTLCache[str, list[float]] = TTLCache(max_clients, 60.0, timer=clock)
        self.refused = 0

    async def check(self, client: str | None) -> float:
        """``blocked``, counted by every worker (in Redis) when it can be."""
        if self.per_minute > 0 and self.shared is not None:
            wait = await self.shared.blocked(client_key(client), self.per_minute)
            if wait is not None:
                self.refused += wait > 0
                return wait
        return self.blocked(client)

    async def count(self, client: str | None) -> None:
        """``failed``, counted by every worker (in Redis) when it can be."""
        if self.per_minute > 0 and self.shared is not None and await self.shared.failed(client_key(client)):
            return
        self.failed(client)

    def blocked(self, client: str | None) -> float:
        """Seconds until ``client`` may try again; 0.0 when it may now (this worker's count)."""
        if self.per_minute <= 0:
            return 0.0
        seen = self._failures.get(client_key(client))
        if seen is None or seen[0] < self.per_minute:
            return 0.0
        self.refused += 1
        return max(0.0, seen[1] + 60.0 - self._clock())

    def failed(self, client: str | None) -> None:
        if self.per_minute <= 0:
            return
        key = client_key(client)
        seen = self._failures.get(key)
        if seen is None:
            self._failures[key] = [1, self._clock()]
        else:
            seen[0] += 1
