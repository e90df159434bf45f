"""What the reference service needs to know, from options or the environment.

The service runs in worker processes started by uvicorn, so its configuration travels as JSON
in an environment variable rather than on a command line (a database URL may hold a password).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

CONFIG_ENV = "TRUELABEL_SERVE_CONFIG"


@dataclass(frozen=True)
class ServiceConfig:
    database: str                         # a legacy SQLite path or a PostgreSQL URL
    redis_url: str | None = None          # L2 cache, the cutover gate and the published primary
    cache: bool = True
    db_events: bool = True                # invalidate on PostgreSQL's own change log (cache.listener)
    primary_file: str | None = None       # the cutover's primary file, when Redis is not used
    follow_primary: bool = True
    postgres_url: str | None = None       # credentials for the primary the cutover publishes
    legacy_path: str | None = None        # the legacy file a rollback may move a PostgreSQL-started service to
    replicas: tuple[str, ...] = ()
    replica_max_lag: float = 5.0
    gate_wait: float = 5.0                # how long a write is held while the gate is up
    pool_size: int = 20                   # PostgreSQL connections per worker
    async_pool: bool = False              # hot paths on an async pool instead of threads (slower here)
    prepare: bool = True                  # server-side prepared statements (off behind PgBouncer)
    group_commit_window: float = 0.002    # seconds a scan batch gathers before it is written
    group_commit_max: int = 1000          # scans in one batch at most
    batch_max_rows: int = 1000            # rows one POST /scans/batch may carry
    max_waiting_reads: int = 400          # reads running or waiting per worker; past it, 503 at once
    follow_interval: float = 0.2
    refresh_interval: float = 600.0       # brand_dashboard_stats (plan: every 10 minutes)
    warm_interval: float = 3600.0         # cache warming (plan: hourly)
    warm_on_start: bool = True
    warm_products: int = 100              # the most scanned products (plan §4.3: 100)
    warm_brands: int = 50                 # dashboards of that many brands
    legacy_mode: str = "best"
    admin_token_sha256: str | None = None # SHA-256 of TRUELABEL_ADMIN_TOKEN (the token itself never travels)
    auth_cache_seconds: float = 30.0      # how long a key's verdict is remembered (a revocation's delay)
    auth_failures_per_minute: int = 20    # failed authentications per client address a minute; then 429 (0: off)
    scan_rate: float = 20.0               # scans a second per client address (0: no limit)
    scan_burst: int = 40                  # scans a client address may send at once

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> "ServiceConfig":
        data = json.loads(os.environ[CONFIG_ENV])
        data["replicas"] = tuple(data.get("replicas", ()))
        return cls(**data)

    @property
    def primary_path(self) -> Path | None:
        return Path(self.primary_file) if self.primary_file else None
