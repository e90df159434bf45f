"""The service's per-client limits counted in Redis, so every worker spends from one quota.

A worker that counted alone let an address send N times the limit through N workers (and the
next deployment with more workers raised it again). Here a scan's token bucket is one Redis key
per client (``limits.client_key``) updated by one script call: GCRA, the token bucket written as
the moment the bucket will be full again ("theoretical arrival time"), so a client costs one
key holding one number, which expires as soon as its bucket is full. Redis's own clock is used,
so workers on several machines agree. Failed authentications are a counter per client that
expires a minute after the first failure.

Redis is the shared count, not a condition for serving: when a call fails or is slow (past
``timeout``), the worker falls back to its own in-process count for ``pause`` seconds (the
bound it had before, N times the limit at worst) and says so once in the log. The keys are
bounded by the limits themselves: a client's key lives at most ``burst / rate`` seconds (a
minute for failures), and every IPv6 client in a /64 shares one.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
import redis.asyncio as aioredis

from truelabel_db.postgres import redact

PREFIX = "tl:limit:"
log = logging.getLogger(__name__)

# KEYS[1]: the client's bucket; ARGV[1]: microseconds per token; ARGV[2]: the burst. Returns 0
# when a token was spent, else the microseconds until one will be there.
_TAKE = """
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2]) * interval
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local full_at = tonumber(redis.call('GET', KEYS[1]) or now)
if full_at < now then full_at = now end
local after = full_at + interval
local over = after - now - capacity
if over > 0 then return math.ceil(over) end
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX', math.max(1, math.ceil((after - now) / 1000)))
return 0
"""

# KEYS[1]: the client's failures; ARGV[1]: how many a minute. Milliseconds until it may try again.
_BLOCKED = """
local failures = tonumber(redis.call('GET', KEYS[1]) or '0')
if failures < tonumber(ARGV[1]) then return 0 end
local left = redis.call('PTTL', KEYS[1])
if left < 1 then return 0 end
return left
"""

# KEYS[1]: the client's failures; ARGV[1]: the window in milliseconds, from the first failure.
_FAILED = """
local failures = redis.call('INCR', KEYS[1])
if failures == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return failures
"""


class SharedCounters:
    """The limits' counts in Redis; every method answers None when Redis cannot be asked now,
    and the caller counts in process instead."""

    def __init__(self, url: str, *, timeout: float = 0.25, pause: float = 1.0, connections: int = 64) -> None:
        # At most ``connections`` calls at once (each holds a connection); past that, a scan is
        # counted in this worker at once. A Redis that is slow, not down, so gets a bounded number
        # of connections instead of one per scan in flight (which would crowd out the cache's and
        # the gate's). Not a blocking pool: redis-py's lets some waiters starve past any timeout
        # (measured: 18 of 5,000 calls waited over 250 ms with 16 connections for 50 callers).
        self._client: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30)
        self.connections = connections
        self._in_flight = 0
        self.busy = 0   # calls counted here because ``connections`` were already in flight
        self._take, self._blocked, self._failed = (self._client.register_script(script)
                                                   for script in (_TAKE, _BLOCKED, _FAILED))
        self.pause = pause
        self._away_until = 0.0
        self._said = False
        self.fallbacks = 0

    async def take(self, client: str, rate: float, burst: int) -> float | None:
        """Spend one of ``client``'s tokens: 0.0, or the seconds until one will be there."""
        waited = await self._run(self._take, PREFIX + "scan:" + client, max(1, round(1_000_000 / rate)), burst)
        return None if waited is None else waited / 1_000_000

    async def blocked(self, client: str, per_minute: int) -> float | None:
        """Seconds until ``client``, past ``per_minute`` failures, may try again; 0.0 when now."""
        left = await self._run(self._blocked, PREFIX + "auth:" + client, per_minute)
        return None if left is None else left / 1000

    async def failed(self, client: str) -> bool:
        """Count one failure of ``client``; False when Redis did not take it."""
        return await self._run(self._failed, PREFIX + "auth:" + client, 60_000) is not None

    async def close(self) -> None:
        await self._client.aclose()

    async def _run(self, script: Any, key: str, *args: float) -> int | None:
        if time.monotonic() < self._away_until:
            return None
        if self._in_flight >= self.connections:
            self.busy += 1
            return None
        self._in_flight += 1
        try:
            answer = await script(keys=[key], args=list(args))
        except (redis.RedisError, OSError) as exc:
            self._away_until = time.monotonic() + self.pause
            self.fallbacks += 1
            if not self._said:
                log.warning("limits are counted in this worker only while Redis does not answer: %s",
                            redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
                self._said = True
            return None
        finally:
            self._in_flight -= 1
        if self._said:
            log.warning("limits are counted in Redis again, shared by every worker")
            self._said = False
        return int(answer)
