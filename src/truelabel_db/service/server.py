"""Running the service: uvicorn's worker processes, and PgBouncer in front of PostgreSQL if asked.

``serve(config, ...)`` is what ``truelabel-db serve`` calls. It checks the database first (a
wrong path or URL is one line, not a worker's traceback), refuses to listen beyond loopback
while no credential exists (no active API key, no admin token), starts PgBouncer when ``pooler`` is
given (the workers then connect through it, without server-side prepared statements), runs
uvicorn until it is stopped, and stops the pooler after it. Idle keep-alive connections are
kept ``keep_alive`` seconds (uvicorn's default, 5 s, is shorter than a person's think time:
each pause would cost a new connection; 75 s is what load balancers commonly expect).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from truelabel_db.errors import ConfigError, NoCredentialsError
from truelabel_db.hotpaths import is_postgres_url, open_hot_paths
from truelabel_db.service.auth import ADMIN_TOKEN_ENV, credentials_configured
from truelabel_db.service.config import CONFIG_ENV, ServiceConfig
from truelabel_db.service.pgbouncer import PgBouncer, PoolerSettings

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def refuse_unprotected(config: ServiceConfig, host: str) -> None:
    """Beyond loopback, only with credentials someone can hold: else brand data and the queue
    would be served to nobody, and an operator would be tempted to switch the checks off."""
    if host in LOOPBACK or credentials_configured(config):
        return
    raise NoCredentialsError(f"refusing to listen on {host}: no API key is active and {ADMIN_TOKEN_ENV} is not set "
                             "(create one with `truelabel-db keys create --scope service`)")


def serve(config: ServiceConfig, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          pooler: PoolerSettings | None = None, pooler_dir: Path | None = None, keep_alive: float = 75.0,
          announce: Callable[[str], None] = lambda _: None) -> None:
    import uvicorn

    open_hot_paths(config.database, mode=config.legacy_mode, pool_size=1).close()  # fail now, in one line
    refuse_unprotected(config, host)
    bouncer = None
    if pooler is not None:
        if not is_postgres_url(config.database):
            raise ConfigError("--pgbouncer pools PostgreSQL connections; the database is a SQLite file")
        bouncer = PgBouncer(config.database, pooler_dir, pooler).start()
        config = dataclasses.replace(config, database=bouncer.url, prepare=False)
        announce(f"PgBouncer (transaction mode, {pooler.pool_size} server connections) on {bouncer.url}")
    os.environ[CONFIG_ENV] = config.to_env()
    announce(f"serving on http://{host}:{port} ({workers} worker(s), cache {'on' if config.cache else 'off'})")
    try:
        uvicorn.run("truelabel_db.service.app:app_from_env", factory=True, host=host, port=port,
                    workers=workers, log_level="warning", access_log=False,
                    timeout_keep_alive=int(keep_alive))
    finally:
        if bouncer is not None:
            bouncer.stop()
