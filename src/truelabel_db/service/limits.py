"""Limits on what an anonymous client may ask: scans per second per address, and sizes.

Scans stay anonymous (a consumer's phone has no key), so the only handle on a client is its
address. Each address has a token bucket, in process: ``rate`` scans a second on average,
``burst`` at once; past it the answer is 429 with ``Retry-After``. A worker keeps its own
buckets (with N workers an address gets up to N times the rate: a bound, not an exact quota),
the least recently seen address is forgotten first when ``MAX_CLIENTS`` are tracked, and a rate
of 0 switches the limit off (the load benchmarks send thousands a second from loopback). Behind
a proxy the address is the one uvicorn takes from ``X-Forwarded-For`` for trusted proxies
(``FORWARDED_ALLOW_IPS``); a proxy that does not set it makes every client one address.

Sizes are checked before anything touches the database or the cache: identifiers in paths are
at most ``MAX_ID`` characters (a UUID is 36), a scan's body at most ``MAX_SCAN_BODY`` bytes.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass

MAX_ID = 64
MAX_SCAN_BODY = 4 * 1024
MAX_CLIENTS = 100_000


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets by client address; ``take`` says how long to wait (0: go ahead)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, max(1, burst)
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self.refused = 0

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, client: str | None, now: float | None = None) -> float:
        """Spend one token of ``client``'s bucket; 0.0 if it had one, else seconds until it will."""
        if not self.enabled:
            return 0.0
        now = time.monotonic() if now is None else now
        bucket = self._bucket(client or "unknown", now)
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
