"""The cached hot paths awaited from the event loop, without a thread for a hit in memory.

A read whose key is in this process's L1 is answered on the event loop: a dictionary lookup.
Anything else goes through ``CachedHotPaths`` in a worker thread (admitted as the blocking
paths' reads are, see ``awaitable``), because the layers below
(Redis, the cache table, the loader's stampede protection and its invalidation token) are
blocking code; the loader there uses the blocking pool. Writes skip the cache (see
``CachedHotPaths``): they go to ``writes``, the same async implementation the service uses
without a cache, and only note their brands for the coalesced invalidation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from truelabel_db.cache import keys
from truelabel_db.cache.keys import bounded
from truelabel_db.cache.memory import MemoryLayer
from truelabel_db.hotpaths.awaitable import AsyncHotPaths, ReadAdmission
from truelabel_db.hotpaths.base import Ingested, Scan
from truelabel_db.hotpaths.cached import CachedHotPaths
from truelabel_db.hotpaths.shape import Record

T = TypeVar("T")


class AsyncCachedHotPaths:
    def __init__(self, cached: CachedHotPaths, writes: AsyncHotPaths, admission: ReadAdmission | None = None) -> None:
        self.cached, self.writes = cached, writes
        self.kind = cached.kind
        self.admission = admission or ReadAdmission()

    async def _read(self, key: str, method: Callable[..., T], *args: Any, first: int | None = None) -> T:
        """``key`` as ``CachedHotPaths`` names it (canonical id, canonical page); ``first``: the
        rows asked for, when the cached page holds more."""
        value: Any = self.cached.cache.l1.get(key) if bounded(key) else MemoryLayer.MISSING
        if value is not MemoryLayer.MISSING:
            self.cached.cache.stats.hit("l1")
            return cast(T, value if first is None else value[:first])
        return await self.admission.run(method, *args)

    async def product_list(self, limit: int = 1000) -> list[Record]:
        return await self._read(keys.latest_products(limit), self.cached.product_list, limit, first=limit)

    async def product(self, product_id: str) -> Record | None:
        return await self._read(keys.product(product_id), self.cached.product, product_id)

    async def qr_analytics(self, brand_id: str, days: int = 30) -> Record:
        return await self._read(keys.analytics(brand_id, days), self.cached.qr_analytics, brand_id, days)

    async def brand_dashboard(self, brand_id: str) -> Record | None:
        return await self._read(keys.dashboard(brand_id), self.cached.brand_dashboard, brand_id)

    async def validation_queue(self, limit: int = 100) -> list[Record]:
        return await self._read(keys.queue(limit), self.cached.validation_queue, limit, first=limit)

    async def search(self, text: str, limit: int = 20) -> list[Record]:
        return await self._read(keys.search(text, limit), self.cached.search, text, limit, first=limit)

    async def scan_many(self, scans: Sequence[Scan]) -> list[Record | None]:
        found = await self.writes.scan_many(scans)
        self.cached.scans.note(p["user_id"] for p in found if p)
        return found

    async def record_scans(self, scans: Sequence[Scan]) -> Ingested:
        ingested = await self.writes.record_scans(scans)
        self.cached.scans.note(ingested.brands)
        return ingested
