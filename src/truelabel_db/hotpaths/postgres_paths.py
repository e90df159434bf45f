"""The hot paths on the optimized PostgreSQL schema, over a blocking connection pool.

This is the implementation for jobs, scripts, the cache's loaders and the benchmarks; the
service's request path uses ``AsyncPostgresHotPaths``, which sends the same statements
(``postgres_sql``). Each answer is one round trip where it can be: the product list is one
server-built JSON document; a scan reads the product and records the access in one statement;
the analytics pipeline their two queries. Indexes that serve each path:
``idx_products_created_at``, ``idx_validations_product``, ``idx_qr_access_code`` on every
monthly partition, ``idx_queue_by_priority`` (partial), ``idx_products_search`` (GIN) and the
trigram indexes, and the ``brand_dashboard_stats`` view.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from truelabel_db import postgres
from truelabel_db.errors import TargetError
from truelabel_db.hotpaths import postgres_sql as q
from truelabel_db.hotpaths.base import SERVED_TABLES, Ingested, Scan, analytics_answer, window
from truelabel_db.hotpaths.shape import Record
from truelabel_db.postgres import describe, one, redact
from truelabel_db.schema.mapping import BY_LEGACY

PoolOrUrl = ConnectionPool | str
NOT_REFRESHED = ("brand_dashboard_stats has never been refreshed: "
                 "run `truelabel-db maintain run refresh-views`")


def connection_kwargs(name: str, *, prepare: bool = True) -> dict[str, Any]:
    """Autocommit (each statement its own transaction) and, behind PgBouncer in transaction
    mode, no server-side prepared statements: PgBouncer 1.18 cannot carry them from the server
    connection that prepared one to the next."""
    kwargs: dict[str, Any] = {"autocommit": True, "application_name": name}
    if not prepare:
        kwargs["prepare_threshold"] = None
    return kwargs


def reachable(url: str) -> None:
    """One connection first: a server that refuses, or a wrong password, fails here at once with
    its own reason, where a pool would retry in the background until its timeout and then say only
    that it is not ready. A database without the tables served (a wrong URL, a copy not made yet)
    is refused here too, instead of answering every request with a 500."""
    with postgres.connect(url, autocommit=True, check_version=False) as conn:
        absent = postgres.absent_tables(conn, [BY_LEGACY[t].target for t in SERVED_TABLES])
    if absent:
        raise TargetError(f"PostgreSQL {describe(url)} holds no True Label schema (no table {', '.join(absent)}): "
                          "check the URL; `truelabel-db copy` or `truelabel-db schema apply` makes it")


def open_pool(url: str, *, max_size: int = 10, name: str = "truelabel-db", prepare: bool = True) -> ConnectionPool:
    """A pool that is ready when returned, or a one-line error naming the server and why."""
    reachable(url)
    pool = ConnectionPool(url, min_size=1, max_size=max_size, open=False, name=name,
                          kwargs=connection_kwargs(name, prepare=prepare))
    try:
        pool.open(wait=True, timeout=10)
    except (PoolTimeout, psycopg.Error) as exc:
        pool.close()
        raise TargetError(f"cannot connect to PostgreSQL {describe(url)}: {redact(str(exc))}") from exc
    return pool


class PostgresHotPaths:
    kind = "postgresql"

    def __init__(self, target: PoolOrUrl, *, max_size: int = 10, prepare: bool = True) -> None:
        self._owns_pool = isinstance(target, str)
        self.pool = open_pool(target, max_size=max_size, prepare=prepare) if isinstance(target, str) else target
        self.fuzzy = bool(self._rows(q.HAS_TRIGRAM))

    def close(self) -> None:
        if self._owns_pool:
            self.pool.close()

    def _rows(self, statement: q.Statement) -> list[tuple[Any, ...]]:
        with self.pool.connection() as conn:
            return conn.execute(statement.query, statement.params).fetchall()

    def _document(self, statement: q.Statement) -> Any:
        with self.pool.connection() as conn:
            (document,) = one(conn.execute(statement.query, statement.params))
        return orjson.loads(document)

    def synchronous_commit(self) -> str:
        """The server's setting for our sessions: 'off' would acknowledge commits not yet on disk."""
        return str(self._rows(q.SYNCHRONOUS_COMMIT)[0][0])

    # -- the product list and detail -------------------------------------------------------
    def product_list(self, limit: int = 1000) -> list[Record]:
        products: list[Record] = self._document(q.product_list(limit))
        return products

    def product(self, product_id: str) -> Record | None:
        if not q.is_uuid(product_id):
            return None  # no such id can exist here; the legacy side answers the same
        found = self._document(q.product(product_id))
        return found[0] if found else None

    # -- the scan write path ---------------------------------------------------------------
    def scan(self, scan: Scan) -> Record | None:
        rows = self._rows(q.scan(scan))
        return q.scanned(rows[0]) if rows else None

    def scan_many(self, scans: Sequence[Scan]) -> list[Record | None]:
        return q.scanned_by_position(len(scans), self._rows(q.scan_many(scans)))

    def record_scans(self, scans: Sequence[Scan]) -> Ingested:
        ((inserted, brands, unknown),) = self._rows(q.record_scans(scans))
        return Ingested(inserted, tuple(brands), tuple(n - 1 for n in unknown))

    def product_by_qr(self, qr_code: str) -> Record | None:
        rows = self._rows(q.product_by_qr(qr_code))
        return q.scanned(rows[0]) if rows else None

    def record_scan(self, scan: Scan) -> None:
        statement = q.record_scan(scan)
        with self.pool.connection() as conn:
            conn.execute(statement.query, statement.params)

    # -- QR scan analytics -----------------------------------------------------------------
    def qr_analytics(self, brand_id: str, days: int = 30, now: datetime | None = None) -> Record:
        start, end = window(days, now)
        if not q.is_uuid(brand_id):
            return analytics_answer(brand_id, start, end, {}, [])  # no such brand: no scans, as on SQLite
        params = {"brand": brand_id, "start": start, "end": end}
        per_day, top = q.analytics_days(params), q.analytics_top(params)
        with self.pool.connection() as conn, conn.pipeline():
            days_cur = conn.execute(per_day.query, per_day.params)
            top_cur = conn.execute(top.query, top.params)
            per_day_rows: dict[Any, Any] = dict(days_cur.fetchall())
            top_rows = top_cur.fetchall()
        return analytics_answer(brand_id, start, end, per_day_rows, q.top_products(top_rows))

    # -- a brand's dashboard ---------------------------------------------------------------
    def brand_dashboard(self, brand_id: str) -> Record | None:
        if not q.is_uuid(brand_id):
            return None
        try:
            rows = self._rows(q.dashboard(brand_id))
        except psycopg.errors.ObjectNotInPrerequisiteState as exc:
            raise TargetError(NOT_REFRESHED) from exc
        return q.dashboard_record(brand_id, rows[0]) if rows else None

    def refresh_dashboard(self) -> None:
        """Concurrently when the view has data (readers never wait), plainly the first time."""
        self._rows(q.REFRESH_DASHBOARD)

    # -- the validation queue and search ---------------------------------------------------
    def validation_queue(self, limit: int = 100) -> list[Record]:
        return q.queue_records(self._rows(q.validation_queue(limit)))

    def search(self, text: str, limit: int = 20) -> list[Record]:
        if not text.split():
            return []
        return q.search_records(self._rows(q.search(text, limit, self.fuzzy)))

    # -- ids for warming and load ----------------------------------------------------------
    def brands(self, limit: int = 1000) -> list[str]:
        return [str(r[0]) for r in self._rows(q.brands(limit))]

    def popular_products(self, limit: int = 100) -> list[str]:
        return [str(r[0]) for r in self._rows(q.popular_products(limit))]
