"""The hot paths as coroutines, whatever implements them.

The service's handlers are coroutines: a request that waits (for PostgreSQL, for a group
commit) holds no thread. ``AsyncHotPaths`` is what they await. ``AsyncPostgresHotPaths`` is
native; ``InThreads`` runs a blocking implementation (the legacy SQLite, whose driver has no
async form) in the worker threads, one call per thread at a time, bounded by anyio's limiter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from anyio import to_thread

from truelabel_db.hotpaths.base import HotPaths, Ingested, Scan
from truelabel_db.hotpaths.shape import Record

T = TypeVar("T")


class AsyncHotPaths(Protocol):
    kind: str

    async def product_list(self, limit: int = 1000) -> list[Record]: ...

    async def product(self, product_id: str) -> Record | None: ...

    async def qr_analytics(self, brand_id: str, days: int = 30) -> Record: ...

    async def brand_dashboard(self, brand_id: str) -> Record | None: ...

    async def validation_queue(self, limit: int = 100) -> list[Record]: ...

    async def search(self, text: str, limit: int = 20) -> list[Record]: ...

    async def scan_many(self, scans: Sequence[Scan]) -> list[Record | None]: ...

    async def record_scans(self, scans: Sequence[Scan]) -> Ingested: ...


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    return await to_thread.run_sync(function, *args)


class InThreads:
    """A blocking implementation awaited from the event loop."""

    def __init__(self, paths: HotPaths) -> None:
        self.paths = paths
        self.kind = paths.kind

    async def product_list(self, limit: int = 1000) -> list[Record]:
        return await in_thread(self.paths.product_list, limit)

    async def product(self, product_id: str) -> Record | None:
        return await in_thread(self.paths.product, product_id)

    async def qr_analytics(self, brand_id: str, days: int = 30) -> Record:
        return await in_thread(self.paths.qr_analytics, brand_id, days)

    async def brand_dashboard(self, brand_id: str) -> Record | None:
        return await in_thread(self.paths.brand_dashboard, brand_id)

    async def validation_queue(self, limit: int = 100) -> list[Record]:
        return await in_thread(self.paths.validation_queue, limit)

    async def search(self, text: str, limit: int = 20) -> list[Record]:
        return await in_thread(self.paths.search, text, limit)

    async def scan_many(self, scans: Sequence[Scan]) -> list[Record | None]:
        return await in_thread(self.paths.scan_many, scans)

    async def record_scans(self, scans: Sequence[Scan]) -> Ingested:
        return await in_thread(self.paths.record_scans, scans)
