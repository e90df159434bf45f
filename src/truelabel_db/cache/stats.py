"""Hit and miss counters per layer, per process, summed across processes in Redis."""

from __future__ import annotations

import threading
from collections import Counter

LAYERS = ("l1", "l2", "l3")
EVENTS = ("loads", "waits", "discarded", "invalidations", "bus_drops", "unbounded", "flushes", "suspect",
          "db_events", "l2_dirty", "l2_repairs", "l3_dirty", "l3_repairs")


class CacheStats:
    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._flushed: Counter[str] = Counter()
        self._lock = threading.Lock()

    def hit(self, layer: str) -> None:
        self.add(f"{layer}_hits")

    def miss(self, layer: str) -> None:
        self.add(f"{layer}_misses")

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def unflushed(self) -> dict[str, int]:
        """What changed since the last call: the deltas to add to the shared totals."""
        with self._lock:
            deltas = {k: v - self._flushed[k] for k, v in self._counts.items() if v != self._flushed[k]}
            self._flushed = Counter(self._counts)
        return deltas


def hit_ratios(counts: dict[str, int]) -> dict[str, float | None]:
    """Per layer: hits / lookups that reached it (None before the first lookup)."""
    ratios: dict[str, float | None] = {}
    for layer in LAYERS:
        hits, misses = counts.get(f"{layer}_hits", 0), counts.get(f"{layer}_misses", 0)
        ratios[layer] = hits / (hits + misses) if hits + misses else None
    lookups = counts.get("l1_hits", 0) + counts.get("l1_misses", 0)
    served = sum(counts.get(f"{layer}_hits", 0) for layer in LAYERS)
    ratios["overall"] = served / lookups if lookups else None
    return ratios

