"""L1: a bounded in-process cache with a TTL per entry, and its own group index.

cachetools' TLRUCache gives the size bound (least recently used goes first) and a per-entry
expiry; it is not thread-safe by itself, so every access holds one lock. The group index lets
an invalidation that arrives from another process drop a whole group here without a scan; it
is pruned of evicted and expired keys whenever it holds twice as many memberships as the layer
holds entries, so it is as bounded as the layer.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from cachetools import TLRUCache

from truelabel_db.cache.keys import groups_of

_MISSING = object()


def _expires_at(_key: str, entry: tuple[Any, float], now: float) -> float:
    return now + entry[1]


class MemoryLayer:
    def __init__(self, max_size: int = 1000, max_ttl: float = 60.0) -> None:
        self.max_ttl = max_ttl
        self._data: TLRUCache[str, tuple[Any, float]] = TLRUCache(max_size, _expires_at, timer=time.monotonic)
        self._groups: dict[str, set[str]] = {}
        self._members = 0  # memberships in the index: pruned when they pass twice the layer's size
        self._prune_at = 2 * max_size
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        """The value, or ``MemoryLayer.MISSING``."""
        with self._lock:
            entry = self._data.get(key)
        return _MISSING if entry is None else entry[0]

    def set(self, key: str, value: Any, ttl: float) -> None:
        with self._lock:
            self._data[key] = (value, min(ttl, self.max_ttl))
            for group in groups_of(key):
                members = self._groups.setdefault(group, set())
                if key not in members:
                    members.add(key)
                    self._members += 1
            if self._members > self._prune_at:
                self._prune_groups()

    def delete(self, keys: list[str], groups: list[str]) -> None:
        with self._lock:
            for group in groups:
                members = self._groups.pop(group, set())
                self._members -= len(members)
                for key in members:
                    self._data.pop(key, None)
            for key in keys:
                self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._groups.clear()
            self._members = 0

    def __len__(self) -> int:
        with self._lock:
            self._data.expire()
            return len(self._data)

    def _prune_groups(self) -> None:
        """Forget evicted and expired keys in the index so that it stays as bounded as the cache:
        run when the memberships pass twice the layer's size, so at most every ``maxsize`` sets
        (before, only when the number of groups did, and one group could grow without bound)."""
        self._data.expire()
        live = set(self._data.keys())
        self._groups = {g: members & live for g, members in self._groups.items() if members & live}
        self._members = sum(len(members) for members in self._groups.values())
        self._prune_at = 2 * max(int(self._data.maxsize), self._members)  # a key in several groups: no prune per set

    MISSING = _MISSING
