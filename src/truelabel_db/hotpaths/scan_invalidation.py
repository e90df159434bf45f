"""The cache invalidations that scans cause, gathered per brand and sent once per window.

A scan makes its brand's analytics stale (rule ``scan:create``: ``analytics:brand:{userId}:*``,
after 5 s). Raising that event on every scan cost the scan path a rule lookup, a lock, a timer
thread per brand and, when the timer fired, a Redis script, a publish and a DELETE on the cache
table per brand: the cache made the scan mix slower than no cache at all. Here a scan only adds
its brand to a set; once per window one call invalidates every brand noted, in one Redis
script, one publish and one DELETE. The rule stays the single statement of what a scan makes
stale and how soon: the patterns and the window come from it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from truelabel_db.cache.invalidation import RULES, Rule, plan
from truelabel_db.cache.keys import is_group
from truelabel_db.cache.layered import LayeredCache

EVENT = "scan:create"


def window_of(rules: dict[str, tuple[Rule, ...]] = RULES) -> float:
    """How stale the rule lets a brand's analytics be: its longest delay (at least 0.1 s)."""
    return max([rule.delay for rule in rules[EVENT]] + [0.1])


class ScanInvalidations:
    def __init__(self, cache: LayeredCache, rules: dict[str, tuple[Rule, ...]] = RULES) -> None:
        self.cache, self.rules = cache, rules
        self.window = window_of(rules)
        self._brands: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.flushes = 0
        self._thread = threading.Thread(target=self._run, name="scan-invalidations", daemon=True)

    def start(self) -> "ScanInvalidations":
        self._thread.start()
        return self

    def note(self, brands: Iterable[str | None]) -> None:
        """Cheap enough for every scan: a set update under a lock, nothing else."""
        named = {b for b in brands if b}
        if named:
            with self._lock:
                self._brands |= named

    def flush(self) -> int:
        """Invalidate what every noted brand made stale, in one call; how many brands."""
        with self._lock:
            brands, self._brands = self._brands, set()
        if not brands:
            return 0
        keys: list[str] = []
        groups: list[str] = []
        for brand in sorted(brands):
            planned = plan(EVENT, {"userId": brand}, self.rules)
            patterns = planned.keys + planned.groups + [pattern for pattern, _ in planned.delayed]
            for pattern in patterns:
                (groups if is_group(pattern) else keys).append(pattern)
        self.cache.invalidate(keys, groups)
        self.flushes += 1
        return len(brands)

    def _run(self) -> None:
        while not self._stop.wait(self.window):
            try:
                self.flush()
            except Exception:  # a failed invalidation leaves TTLs to bound staleness; try next window
                continue

    def close(self) -> None:
        """Stop, sending what is pending so that no invalidation is lost on shutdown."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.flush()
