"""Cache hit ratio: the share of block reads served from shared buffers (plan §6.1).

Below about 0.99 on an OLTP database the working set no longer fits in ``shared_buffers``; the
figures are cumulative since the statistics were last reset, which the report carries.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from truelabel_db.postgres import one


@dataclass
class CacheHit:
    database_ratio: float | None
    table_ratio: float | None
    index_ratio: float | None
    blocks_read: int
    blocks_hit: int
    stats_reset: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio(hit: int | None, read: int | None) -> float | None:
    hit, read = int(hit or 0), int(read or 0)
    return round(hit / (hit + read), 4) if hit + read else None


def cache_hit(conn: psycopg.Connection) -> CacheHit:
    blks_hit, blks_read, reset = one(conn.execute(
        "SELECT blks_hit, blks_read, stats_reset FROM pg_stat_database WHERE datname = current_database()"
    ))
    heap_hit, heap_read, idx_hit, idx_read = one(conn.execute(
        "SELECT sum(heap_blks_hit), sum(heap_blks_read), sum(idx_blks_hit), sum(idx_blks_read) "
        "FROM pg_statio_user_tables"))
    return CacheHit(_ratio(blks_hit, blks_read), _ratio(heap_hit, heap_read), _ratio(idx_hit, idx_read),
                    int(blks_read), int(blks_hit), None if reset is None else str(reset))
