"""L3: the ``cache_entries`` table, for values worth keeping when Redis is flushed or down.

Only entries marked persistent land here (warming's popular products, the dashboards): the
table is a second chance, not a hot layer. Expired rows are ignored on read and deleted by
``purge_expired`` (the service runs it with its other periodic jobs).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from truelabel_db.cache.keys import groups_of
from truelabel_db.postgres import one


class PostgresLayer:
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def get(self, key: str) -> tuple[bool, Any, float]:
        """(found, value, seconds left)."""
        try:
            with self.pool.connection() as conn:
                row = conn.execute(sql.SQL(
                    "SELECT value, extract(epoch FROM expires_at - now()) FROM cache_entries "
                    "WHERE key = %s AND (expires_at IS NULL OR expires_at > now())"), (key,)).fetchone()
        except psycopg.Error:
            return False, None, 0.0
        if row is None:
            return False, None, 0.0
        return True, row[0], float(row[1]) if row[1] is not None else 3600.0

    def set(self, key: str, value: Any, ttl: float) -> None:
        with self.pool.connection() as conn:
            conn.execute(sql.SQL(
                "INSERT INTO cache_entries (key, value, tags, expires_at) VALUES (%s, %s, %s, now() + %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, tags = excluded.tags, "
                "expires_at = excluded.expires_at, created_at = now()"),
                (key, Jsonb(value), groups_of(key), timedelta(seconds=ttl)))

    def invalidate(self, keys: Sequence[str], groups: Sequence[str]) -> int:
        with self.pool.connection() as conn:
            return conn.execute(sql.SQL("DELETE FROM cache_entries WHERE key = ANY(%s) OR tags && %s"),
                                (list(keys), list(groups))).rowcount

    def invalidate_all(self) -> int:
        with self.pool.connection() as conn:
            return conn.execute(sql.SQL("DELETE FROM cache_entries")).rowcount

    def purge_expired(self) -> int:
        with self.pool.connection() as conn:
            return conn.execute(sql.SQL("DELETE FROM cache_entries WHERE expires_at <= now()")).rowcount

    def count(self) -> int:
        with self.pool.connection() as conn:
            return int(one(conn.execute(sql.SQL("SELECT count(*) FROM cache_entries "
                                                "WHERE expires_at IS NULL OR expires_at > now()")))[0])
