"""The hot paths through the layered cache: what the reference service calls.

Reads are ``get_or_load`` on a key per question (see ``cache.keys``) with the TTL that suits
it. A question with a client-chosen size is asked as the next canonical page up (``keys.PAGES``)
and sliced, and ids are asked in their canonical spelling, so that request input cannot multiply
keys and every key is one an invalidation names; writes go to the database and then raise their domain event, whose rules invalidate what
they made stale.

On PostgreSQL the database itself announces every change, whoever made it (the app, the
follower, an operator): a ``DatabaseListener`` per process applies the same rules to what the
triggers logged (``cache.db_events``). Until it has caught up the cache is ``suspect`` (read
through to the database); if the database has no triggers, only the service's own events count.

Scans do not use the cache at all on their way in: the statement that records a scan reads the
product in the same round trip, so a cache lookup (an L2 miss costs a Redis round trip) would
only add work, and the analytics they make stale are invalidated per brand once per window
(``ScanInvalidations``) instead of once per scan. The scan mix must never be slower with the
cache than without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from truelabel_db.cache import keys
from truelabel_db.cache.db_events import ChangeApplier
from truelabel_db.cache.invalidation import Invalidator
from truelabel_db.cache.layered import LayeredCache
from truelabel_db.cache.listener import DatabaseListener, ListenerConfig
from truelabel_db.hotpaths.base import HotPaths, Ingested, Scan
from truelabel_db.hotpaths.scan_invalidation import ScanInvalidations
from truelabel_db.hotpaths.shape import Record

TTL = {"product": 300.0, "list": 60.0, "analytics": 120.0, "dashboard": 600.0, "queue": 30.0,
       "search": 120.0, "popular": 3600.0}


class CachedHotPaths:
    def __init__(self, paths: HotPaths, cache: LayeredCache, *, listen: bool = True,
                 listener: ListenerConfig = ListenerConfig()) -> None:
        self.paths, self.cache = paths, cache
        self.invalidator = Invalidator(cache)
        self.scans = ScanInvalidations(cache).start()
        self.kind = paths.kind
        self.listener = self._listen(listener) if listen else None

    def _listen(self, config: ListenerConfig) -> DatabaseListener | None:
        """A listener on the database the paths read (its primary), if it is PostgreSQL."""
        pool = getattr(self.paths, "pool", None)
        if self.paths.kind != "postgresql" or pool is None:
            return None
        self.cache.mark_suspect()  # until the listener has caught up
        apply = ChangeApplier(Invalidator(self.cache, publish=False), self.scans.note)
        return DatabaseListener(pool.conninfo, self.cache, apply, config).start()

    def product_list(self, limit: int = 1000) -> list[Record]:
        page = keys.page_of(limit)
        if page is None:
            return self.paths.product_list(limit)
        return self.cache.get_or_load(keys.latest_products(limit), lambda: self.paths.product_list(page),
                                      TTL["list"])[:limit]

    def product(self, product_id: str, *, ttl: float | None = None, persistent: bool = False) -> Record | None:
        canonical = keys.canonical_id(product_id)
        if canonical is None:
            return self.paths.product(product_id)
        return self.cache.get_or_load(keys.product(canonical), lambda: self.paths.product(canonical),
                                      ttl or TTL["product"], persistent)

    def scan(self, scan: Scan) -> Record | None:
        product = self.paths.scan(scan)
        self.scans.note([product["user_id"]] if product else [])
        return product

    def scan_many(self, scans: Sequence[Scan]) -> list[Record | None]:
        found = self.paths.scan_many(scans)
        self.scans.note(p["user_id"] for p in found if p)
        return found

    def record_scans(self, scans: Sequence[Scan]) -> Ingested:
        ingested = self.paths.record_scans(scans)
        self.scans.note(ingested.brands)
        return ingested

    def qr_analytics(self, brand_id: str, days: int = 30, now: datetime | None = None) -> Record:
        canonical = keys.canonical_id(brand_id)
        if now is not None or canonical is None:  # a question about the past is not the cached "last N days"
            return self.paths.qr_analytics(brand_id, days, now)
        return self.cache.get_or_load(keys.analytics(canonical, days),
                                      lambda: self.paths.qr_analytics(canonical, days), TTL["analytics"])

    def brand_dashboard(self, brand_id: str, *, persistent: bool = False) -> Record | None:
        canonical = keys.canonical_id(brand_id)
        if canonical is None:
            return self.paths.brand_dashboard(brand_id)
        return self.cache.get_or_load(keys.dashboard(canonical), lambda: self.paths.brand_dashboard(canonical),
                                      TTL["dashboard"], persistent)

    def validation_queue(self, limit: int = 100) -> list[Record]:
        page = keys.page_of(limit)
        if page is None:
            return self.paths.validation_queue(limit)
        return self.cache.get_or_load(keys.queue(limit), lambda: self.paths.validation_queue(page),
                                      TTL["queue"])[:limit]

    def search(self, text: str, limit: int = 20) -> list[Record]:
        page = keys.page_of(limit, keys.SEARCH_PAGES)
        if page is None:  # a large page is answered, never cached: see keys.search
            return self.paths.search(text, limit)
        return self.cache.get_or_load(keys.search(text, limit), lambda: self.paths.search(text, page),
                                      TTL["search"])[:limit]

    def brands(self, limit: int = 1000) -> list[str]:
        return self.paths.brands(limit)

    def popular_products(self, limit: int = 100) -> list[str]:
        return self.paths.popular_products(limit)

    def close(self) -> None:
        if self.listener is not None:
            self.listener.stop()
        self.scans.close()
        self.invalidator.flush()
