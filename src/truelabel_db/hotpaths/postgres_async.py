"""The hot paths on the optimized PostgreSQL schema, on an async connection pool.

The service's handlers await these: a request waiting for PostgreSQL holds no thread, so a
worker process can keep thousands of users' requests and group commits in flight on one event
loop. The statements and the shaping of rows are ``postgres_sql``'s, shared with the blocking
``PostgresHotPaths``; the answers are the same dicts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from truelabel_db.errors import TargetError
from truelabel_db.hotpaths import postgres_sql as q
from truelabel_db.hotpaths.base import Ingested, Scan, analytics_answer, window
from truelabel_db.hotpaths.postgres_paths import NOT_REFRESHED, connection_kwargs, reachable
from truelabel_db.hotpaths.shape import Record
from truelabel_db.postgres import describe, redact


async def open_async_pool(url: str, *, max_size: int = 10, name: str = "truelabel-db", prepare: bool = True,
                          timeout: float = 10.0) -> AsyncConnectionPool:
    """Ready when returned, or a one-line error naming the server. ``timeout`` also bounds how
    long a request waits for a free connection: a saturated database answers 503, not never."""
    await asyncio.to_thread(reachable, url)
    pool = AsyncConnectionPool(url, min_size=1, max_size=max_size, open=False, name=name, timeout=timeout,
                               kwargs=connection_kwargs(name, prepare=prepare))
    try:
        await pool.open(wait=True, timeout=10)
    except (PoolTimeout, psycopg.Error) as exc:
        await pool.close()
        raise TargetError(f"cannot connect to PostgreSQL {describe(url)}: {redact(str(exc))}") from exc
    return pool


class AsyncPostgresHotPaths:
    kind = "postgresql"

    def __init__(self, pool: AsyncConnectionPool, fuzzy: bool) -> None:
        self.pool, self.fuzzy = pool, fuzzy

    @classmethod
    async def open(cls, url: str, *, max_size: int = 10, prepare: bool = True) -> "AsyncPostgresHotPaths":
        pool = await open_async_pool(url, max_size=max_size, prepare=prepare, name="truelabel-serve")
        paths = cls(pool, False)
        paths.fuzzy = bool(await paths._rows(q.HAS_TRIGRAM))
        return paths

    async def close(self) -> None:
        await self.pool.close()

    async def _rows(self, statement: q.Statement) -> list[tuple[Any, ...]]:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(statement.query, statement.params)
            return await cursor.fetchall()

    async def _document(self, statement: q.Statement) -> Any:
        ((document,),) = await self._rows(statement)
        return orjson.loads(document)

    async def product_list(self, limit: int = 1000) -> list[Record]:
        products: list[Record] = await self._document(q.product_list(limit))
        return products

    async def product(self, product_id: str) -> Record | None:
        if not q.is_uuid(product_id):
            return None
        found = await self._document(q.product(product_id))
        return found[0] if found else None

    async def scan_many(self, scans: Sequence[Scan]) -> list[Record | None]:
        return q.scanned_by_position(len(scans), await self._rows(q.scan_many(scans)))

    async def record_scans(self, scans: Sequence[Scan]) -> Ingested:
        ((inserted, brands, unknown),) = await self._rows(q.record_scans(scans))
        return Ingested(inserted, tuple(brands), tuple(n - 1 for n in unknown))

    async def qr_analytics(self, brand_id: str, days: int = 30, now: datetime | None = None) -> Record:
        start, end = window(days, now)
        if not q.is_uuid(brand_id):
            return analytics_answer(brand_id, start, end, {}, [])
        params = {"brand": brand_id, "start": start, "end": end}
        per_day, top = q.analytics_days(params), q.analytics_top(params)
        async with self.pool.connection() as conn, conn.pipeline():
            days_cur = await conn.execute(per_day.query, per_day.params)
            top_cur = await conn.execute(top.query, top.params)
            per_day_rows: dict[Any, Any] = dict(await days_cur.fetchall())
            top_rows = await top_cur.fetchall()
        return analytics_answer(brand_id, start, end, per_day_rows, q.top_products(top_rows))

    async def brand_dashboard(self, brand_id: str) -> Record | None:
        if not q.is_uuid(brand_id):
            return None
        try:
            rows = await self._rows(q.dashboard(brand_id))
        except psycopg.errors.ObjectNotInPrerequisiteState as exc:
            raise TargetError(NOT_REFRESHED) from exc
        return q.dashboard_record(brand_id, rows[0]) if rows else None

    async def validation_queue(self, limit: int = 100) -> list[Record]:
        return q.queue_records(await self._rows(q.validation_queue(limit)))

    async def search(self, text: str, limit: int = 20) -> list[Record]:
        if not text.split():
            return []
        return q.search_records(await self._rows(q.search(text, limit, self.fuzzy)))
