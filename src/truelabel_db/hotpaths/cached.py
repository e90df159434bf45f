"""The hot paths through the layered cache: what the reference service calls.

Reads are ``get_or_load`` on a key per question (see ``cache.keys``) with the TTL that suits
it; writes go to the database and then raise their domain event, whose rules invalidate what
they made stale. The scan looks the product up in the cache and writes the access itself, so
the hottest write in the system costs one INSERT.
"""

from __future__ import annotations

from datetime import datetime

from truelabel_db.cache import keys
from truelabel_db.cache.invalidation import Invalidator
from truelabel_db.cache.layered import LayeredCache
from truelabel_db.hotpaths.base import HotPaths, Scan
from truelabel_db.hotpaths.shape import Record

TTL = {"product": 300.0, "list": 60.0, "analytics": 120.0, "dashboard": 600.0, "queue": 30.0,
       "search": 120.0, "qr": 300.0, "popular": 3600.0}


class CachedHotPaths:
    def __init__(self, paths: HotPaths, cache: LayeredCache) -> None:
        self.paths, self.cache = paths, cache
        self.invalidator = Invalidator(cache)
        self.kind = paths.kind

    def product_list(self, limit: int = 1000) -> list[Record]:
        return self.cache.get_or_load(keys.latest_products(limit), lambda: self.paths.product_list(limit),
                                      TTL["list"])

    def product(self, product_id: str, *, ttl: float | None = None, persistent: bool = False) -> Record | None:
        return self.cache.get_or_load(keys.product(product_id), lambda: self.paths.product(product_id),
                                      ttl or TTL["product"], persistent)

    def scan(self, scan: Scan) -> Record | None:
        product = self.cache.get_or_load(keys.product_by_qr(scan.qr_code),
                                         lambda: self.paths.product_by_qr(scan.qr_code), TTL["qr"])
        self.paths.record_scan(scan)
        if product is not None:
            self.invalidator.invalidate("scan:create", {"userId": product["user_id"]})
        return product

    def qr_analytics(self, brand_id: str, days: int = 30, now: datetime | None = None) -> Record:
        if now is not None:  # a question about the past is not the cached "last N days"
            return self.paths.qr_analytics(brand_id, days, now)
        return self.cache.get_or_load(keys.analytics(brand_id, days),
                                      lambda: self.paths.qr_analytics(brand_id, days), TTL["analytics"])

    def brand_dashboard(self, brand_id: str, *, persistent: bool = False) -> Record | None:
        return self.cache.get_or_load(keys.dashboard(brand_id), lambda: self.paths.brand_dashboard(brand_id),
                                      TTL["dashboard"], persistent)

    def validation_queue(self, limit: int = 100) -> list[Record]:
        return self.cache.get_or_load(keys.queue(limit), lambda: self.paths.validation_queue(limit), TTL["queue"])

    def search(self, text: str, limit: int = 20) -> list[Record]:
        return self.cache.get_or_load(keys.search(text, limit), lambda: self.paths.search(text, limit),
                                      TTL["search"])

    def brands(self, limit: int = 1000) -> list[str]:
        return self.paths.brands(limit)

    def popular_products(self, limit: int = 100) -> list[str]:
        return self.paths.popular_products(limit)

    def close(self) -> None:
        self.invalidator.flush()
