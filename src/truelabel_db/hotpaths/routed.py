"""The PostgreSQL hot paths with reads spread over replicas within a lag bound.

Writes (the scan) and the reads that must see them at once (``product_by_qr`` before a scan)
go to the primary; every other read goes where ``ReadRouter.read_url`` says: a replica whose
replay lag is within the bound, else the primary. Each database gets a pool of its own, opened
on first use. ``reads`` counts where reads went, for ``/health`` and the tests.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from truelabel_db.hotpaths.base import Ingested, Scan
from truelabel_db.hotpaths.postgres_paths import PostgresHotPaths
from truelabel_db.hotpaths.shape import Record
from truelabel_db.postgres import describe
from truelabel_db.replicas.router import ReadRouter


class RoutedHotPaths:
    kind = "postgresql"

    def __init__(self, primary_url: str, replica_urls: Sequence[str], *, max_lag_seconds: float = 5.0,
                 check_interval: float = 1.0, max_size: int = 10) -> None:
        self.router = ReadRouter(primary_url, replica_urls, max_lag_seconds=max_lag_seconds,
                                 check_interval=check_interval)
        self.primary = PostgresHotPaths(primary_url, max_size=max_size)
        self.pool = self.primary.pool          # the cache's L3 lives on the primary
        self._max_size = max_size
        self._by_url: dict[str, PostgresHotPaths] = {primary_url: self.primary}
        self._lock = threading.Lock()
        self.reads: Counter[str] = Counter()

    def _reader(self) -> PostgresHotPaths:
        url = self.router.read_url()
        paths = self._by_url.get(url)
        if paths is None:
            with self._lock:
                paths = self._by_url.get(url)
                if paths is None:
                    paths = self._by_url[url] = PostgresHotPaths(url, max_size=self._max_size)
        self.reads[describe(url)] += 1
        return paths

    def product_list(self, limit: int = 1000) -> list[Record]:
        return self._reader().product_list(limit)

    def product(self, product_id: str) -> Record | None:
        return self._reader().product(product_id)

    def scan(self, scan: Scan) -> Record | None:
        return self.primary.scan(scan)

    def product_by_qr(self, qr_code: str) -> Record | None:
        return self.primary.product_by_qr(qr_code)

    def record_scan(self, scan: Scan) -> None:
        self.primary.record_scan(scan)

    def scan_many(self, scans: Sequence[Scan]) -> list[Record | None]:
        return self.primary.scan_many(scans)

    def record_scans(self, scans: Sequence[Scan]) -> Ingested:
        return self.primary.record_scans(scans)

    def qr_analytics(self, brand_id: str, days: int = 30, now: datetime | None = None) -> Record:
        return self._reader().qr_analytics(brand_id, days, now)

    def brand_dashboard(self, brand_id: str) -> Record | None:
        return self._reader().brand_dashboard(brand_id)

    def refresh_dashboard(self) -> None:
        self.primary.refresh_dashboard()

    def validation_queue(self, limit: int = 100) -> list[Record]:
        return self._reader().validation_queue(limit)

    def search(self, text: str, limit: int = 20) -> list[Record]:
        return self._reader().search(text, limit)

    def brands(self, limit: int = 1000) -> list[str]:
        return self._reader().brands(limit)

    def popular_products(self, limit: int = 100) -> list[str]:
        return self._reader().popular_products(limit)

    def close(self) -> None:
        for paths in self._by_url.values():
            paths.close()
