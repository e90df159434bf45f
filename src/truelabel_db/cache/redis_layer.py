"""L2: Redis, shared by every process, with group sets, a load lock and a guarded store.

The lock does two jobs. It makes one process the loader of a key while the others wait
(stampede protection across processes), and it carries a token that an invalidation deletes:
a loader whose token is gone when it comes to store has computed from data that changed under
it, so its value is dropped instead of cached (the race django-cacheops guards against). A
key joins its groups when its lock is taken, so a group invalidation during the load finds it.

When Redis fails, the layer steps aside for a moment (``backoff``) instead of slowing every
request with a timeout; the cache then serves from L1, L3 or the database.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import redis

from truelabel_db.cache.keys import groups_of

VALUE, LOCK, GROUP = "tl:c:v:", "tl:c:l:", "tl:c:z:"
CHANNEL = "tl:cache:invalidate"
STATS = "tl:cache:stats"
GROUP_CAP = 20_000          # members per group; a key that would pass it is not cached
# Lower caps for groups whose keys anyone can mint: each search text is a key (of at most 50
# rows, see keys.search), so an anonymous client could fill search:* and stop search caching for
# everyone until its keys expire (120 s); 2,000 keys of 50 rows bound what it costs Redis.
GROUP_CAPS = {"search:*": 2_000}
UNCACHEABLE = -1

# A group is a sorted set: member -> when its value expires (ms, Redis's clock). Joining one
# first forgets members already expired, so a group holds the live keys only, and the group
# itself expires with its last member. A full group refuses the key (it is then not cached):
# nothing a client sends can grow a group past GROUP_CAP.
_JOIN = """
local function join(first, key, ttl_ms, cap)
  local t = redis.call('time')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  for i = first, #KEYS do
    redis.call('zremrangebyscore', KEYS[i], '-inf', now)
    if redis.call('zscore', KEYS[i], key) == false and redis.call('zcard', KEYS[i]) >= cap then return false end
  end
  for i = first, #KEYS do
    redis.call('zadd', KEYS[i], 'GT', now + ttl_ms, key)
    if redis.call('pttl', KEYS[i]) < ttl_ms then redis.call('pexpire', KEYS[i], ttl_ms) end
  end
  return true
end
"""
# KEYS: lock, groups...; ARGV: token, lock ms, key, member ttl ms, cap
_ACQUIRE = _JOIN + """
if redis.call('exists', KEYS[1]) == 1 then return 0 end
if not join(2, ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])) then return -1 end
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
# KEYS: lock, value; ARGV: token, value, ttl ms
_STORE_IF_OURS = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('set', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('del', KEYS[1])
return 1
"""
# KEYS: value, groups...; ARGV: value, ttl ms, key, cap
_STORE = _JOIN + """
if not join(2, ARGV[3], tonumber(ARGV[2]), tonumber(ARGV[4])) then return 0 end
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
# KEYS: groups...; ARGV: value prefix, lock prefix, explicit keys...
_INVALIDATE = """
local n = 0
for i = 1, #KEYS do
  for _, member in ipairs(redis.call('zrange', KEYS[i], 0, -1)) do
    n = n + redis.call('del', ARGV[1] .. member, ARGV[2] .. member)
  end
  redis.call('del', KEYS[i])
end
for i = 3, #ARGV do n = n + redis.call('del', ARGV[1] .. ARGV[i], ARGV[2] .. ARGV[i]) end
return n
"""


class RedisLayer:
    def __init__(self, url: str, *, backoff: float = 1.0, timeout: float = 0.5) -> None:
        self.client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                                           health_check_interval=10)
        self.backoff = backoff
        self._down_until = 0.0
        self._acquire = self.client.register_script(_ACQUIRE)
        self._store_if_ours = self.client.register_script(_STORE_IF_OURS)
        self._store = self.client.register_script(_STORE)
        self._invalidate = self.client.register_script(_INVALIDATE)
        self._unlock = self.client.register_script(_UNLOCK)

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self) -> None:
        self._down_until = time.monotonic() + self.backoff

    def _call(self, fn: Any, *args: Any, default: Any = None, **kwargs: Any) -> Any:
        if not self.available:
            return default
        try:
            return fn(*args, **kwargs)
        except redis.RedisError:
            self._failed()
            return default

    def get(self, key: str) -> tuple[bool, Any]:
        raw = self._call(self.client.get, VALUE + key)
        return (False, None) if raw is None else (True, json.loads(raw))

    def set(self, key: str, value: Any, ttl: float) -> bool:
        groups = [GROUP + g for g in groups_of(key)]
        return bool(self._call(self._store, keys=[VALUE + key, *groups],
                               args=[_dump(value), int(ttl * 1000), key, cap_of(key)], default=0))

    def try_lock(self, key: str, token: str, lock_ttl: float, ttl: float) -> bool | int | None:
        """True: we load; False: another process loads; None: Redis is not there to ask;
        ``UNCACHEABLE``: a group of the key is full, load without caching.

        The key joins its groups for as long as the lock and then its value may live (``ttl``),
        so an invalidation during the load finds it, and the group forgets it after."""
        groups = [GROUP + g for g in groups_of(key)]
        result = self._call(self._acquire, keys=[LOCK + key, *groups],
                            args=[token, int(lock_ttl * 1000), key, int((lock_ttl + ttl) * 1000), cap_of(key)])
        if result is None:
            return None
        return UNCACHEABLE if result == UNCACHEABLE else bool(result)

    def store_if_ours(self, key: str, token: str, value: Any, ttl: float) -> bool:
        return bool(self._call(self._store_if_ours, keys=[LOCK + key, VALUE + key],
                               args=[token, _dump(value), int(ttl * 1000)], default=0))

    def unlock(self, key: str, token: str) -> None:
        self._call(self._unlock, keys=[LOCK + key], args=[token])

    def lock_holder(self, key: str) -> bool:
        return bool(self._call(self.client.exists, LOCK + key, default=0))

    def invalidate(self, keys: Sequence[str], groups: Sequence[str]) -> int | None:
        """Delete the keys and every member of the groups, atomically; None if Redis is down."""
        removed = self._call(self._invalidate, keys=[GROUP + g for g in groups], args=[VALUE, LOCK, *keys])
        return None if removed is None else int(removed)

    def flush(self) -> bool:
        """Forget every value, lock and group (a truncated table, a change log that moved on
        while no one listened): SCAN, because nothing narrower names what changed; rare."""
        def drop() -> bool:
            for prefix in (VALUE, LOCK, GROUP):
                batch: list[bytes] = []
                for name in self.client.scan_iter(match=prefix + "*", count=1000):
                    batch.append(name)
                    if len(batch) >= 1000:
                        self.client.unlink(*batch)
                        batch.clear()
                if batch:
                    self.client.unlink(*batch)
            return True

        return bool(self._call(drop, default=False))

    def get_raw(self, name: str) -> str | None:
        raw = self._call(self.client.get, name)
        return None if raw is None else bytes(raw).decode()

    def set_raw(self, name: str, value: str, ttl: float) -> None:
        self._call(self.client.set, name, value, px=int(ttl * 1000))

    def publish(self, message: dict[str, Any]) -> bool:
        return self._call(self.client.publish, CHANNEL, json.dumps(message)) is not None

    def add_stats(self, deltas: dict[str, int]) -> None:
        if not deltas:
            return
        pipe = self.client.pipeline(transaction=False)
        for name, delta in deltas.items():
            pipe.hincrby(STATS, name, delta)
        self._call(pipe.execute)

    def read_stats(self) -> dict[str, int]:
        raw = self._call(self.client.hgetall, STATS, default={}) or {}
        return {k.decode(): int(v) for k, v in raw.items()}

    def close(self) -> None:
        self.client.close()


def cap_of(key: str) -> int:
    """The most members a group of ``key`` may hold (the lowest cap of its groups)."""
    return min([GROUP_CAPS.get(g, GROUP_CAP) for g in groups_of(key)] + [GROUP_CAP])


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
