"""Cache warming (plan §4.3): what the first visitors after a start or a flush will ask for.

Popular products (by scans) go in with a long TTL and into L3, so a Redis flush does not send
the busiest pages to the database; then the active validation queue and the brands'
dashboards. ``Warmer.every`` repeats it on a schedule (the plan: hourly) in a daemon thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import partial

from truelabel_db.cache import keys
from truelabel_db.hotpaths.cached import TTL, CachedHotPaths


@dataclass
class Warmed:
    products: int = 0
    queues: int = 0
    dashboards: int = 0


class Warmer:
    def __init__(self, cached: CachedHotPaths, popular: int = 100, brands: int = 50) -> None:
        self.cached, self.popular, self.brand_limit = cached, popular, brands
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def warm(self) -> Warmed:
        """Each value through ``LayeredCache.load``: the load token and the generation guard it,
        so a change swept between the warmer's read and its store leaves it uncached (before,
        ``set`` stored it unguarded, stale for up to an hour)."""
        warmed = Warmed()
        paths, cache = self.cached.paths, self.cached.cache
        for product_id in paths.popular_products(self.popular):
            cache.load(keys.product(product_id), partial(paths.product, product_id), TTL["popular"],
                       persistent=True)
            warmed.products += 1
        cache.load(keys.queue(100), partial(paths.validation_queue, 100), TTL["queue"])
        warmed.queues += 1
        for brand in paths.brands(self.brand_limit):
            cache.load(keys.dashboard(brand), partial(paths.brand_dashboard, brand), TTL["dashboard"],
                       persistent=True)
            warmed.dashboards += 1
        return warmed

    def every(self, seconds: float) -> "Warmer":
        def loop() -> None:
            while not self._stop.wait(seconds):
                try:
                    self.warm()
                except Exception:  # a failed warm-up costs hit ratio, never the service
                    continue

        self._thread = threading.Thread(target=loop, name="cache-warmer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
