"""The hot paths as coroutines, whatever implements them.

The service's handlers are coroutines: a request that waits (for PostgreSQL, for a group
commit) holds no thread. ``AsyncHotPaths`` is what they await. ``AsyncPostgresHotPaths`` is
native; ``InThreads`` runs a blocking implementation (psycopg's blocking pool, measured faster
here; the legacy SQLite, whose driver has no async form) in worker threads.

Reads and writes do not share a queue for those threads. Writes (group commits, batches) have
threads of their own (``write_threads``): under a flood of reads, the scans still reach the
database instead of waiting behind every read (``bench load`` found scans timing out behind the
read mix's backlog before this). Reads wait for one of anyio's threads, and at most
``max_waiting_reads`` of them may wait: past that a read is refused at once (``Overloaded``,
503) instead of joining a queue whose end its client will not live to see.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from anyio import CapacityLimiter, to_thread

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


class Overloaded(Exception):
    """More work is waiting than the service accepts; the client should retry shortly."""


async def in_thread(function: Callable[..., T], *args: Any, limiter: CapacityLimiter | None = None) -> T:
    return await to_thread.run_sync(function, *args, limiter=limiter)


class ReadAdmission:
    """Reads in worker threads, at most ``limit`` of them running or waiting at once."""

    def __init__(self, limit: int = 400) -> None:
        self.limit = limit
        self.waiting = 0

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        if self.waiting >= self.limit:
            raise Overloaded(f"{self.waiting} reads already wait for the database; retry shortly")
        self.waiting += 1
        try:
            return await in_thread(function, *args)
        finally:
            self.waiting -= 1


class InThreads:
    """A blocking implementation awaited from the event loop."""

    def __init__(self, paths: HotPaths, *, write_threads: int = 4, admission: ReadAdmission | None = None) -> None:
        self.paths = paths
        self.kind = paths.kind
        self.admission = admission or ReadAdmission()
        self._writes = CapacityLimiter(write_threads)

    async def _read(self, function: Callable[..., T], *args: Any) -> T:
        return await self.admission.run(function, *args)

    async def product_list(self, limit: int = 1000) -> list[Record]:
        return await self._read(self.paths.product_list, limit)

    async def product(self, product_id: str) -> Record | None:
        return await self._read(self.paths.product, product_id)

    async def qr_analytics(self, brand_id: str, days: int = 30) -> Record:
        return await self._read(self.paths.qr_analytics, brand_id, days)

    async def brand_dashboard(self, brand_id: str) -> Record | None:
        return await self._read(self.paths.brand_dashboard, brand_id)

    async def validation_queue(self, limit: int = 100) -> list[Record]:
        return await self._read(self.paths.validation_queue, limit)

    async def search(self, text: str, limit: int = 20) -> list[Record]:
        return await self._read(self.paths.search, text, limit)

    async def scan_many(self, scans: Sequence[Scan]) -> list[Record | None]:
        return await in_thread(self.paths.scan_many, scans, limiter=self._writes)

    async def record_scans(self, scans: Sequence[Scan]) -> Ingested:
        return await in_thread(self.paths.record_scans, scans, limiter=self._writes)
