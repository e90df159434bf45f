"""Running the service: uvicorn's worker processes, and PgBouncer in front of PostgreSQL if asked.

``serve(config, ...)`` is what ``truelabel-db serve`` calls. It checks the database first (a
wrong path or URL is one line, not a worker's traceback), refuses to listen beyond loopback
while no credential exists (no active API key, no admin token; a name is loopback only when
every address it resolves to is), takes the admin token out of the environment before any
child process starts (the workers get its digest in their configuration), starts PgBouncer when ``pooler`` is
given (the workers then connect through it, without server-side prepared statements), runs
uvicorn until it is stopped, and stops the pooler after it. Idle keep-alive connections are
kept ``keep_alive`` seconds (uvicorn's default, 5 s, is shorter than a person's think time:
each pause would cost a new connection; 75 s is what load balancers commonly expect).
``X-Forwarded-For`` is believed only from the proxies named in ``forwarded_allow_ips`` (none by
default, whatever uvicorn's own default): from anyone else it would let a client pick the
address the rate limits key on.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
from collections.abc import Callable
from pathlib import Path

from truelabel_db.errors import ConfigError, NoCredentialsError
from truelabel_db.hotpaths import is_postgres_url, open_hot_paths
from truelabel_db.service.auth import ADMIN_TOKEN_ENV, credentials_configured
from truelabel_db.service.config import CONFIG_ENV, ServiceConfig
from truelabel_db.service.pgbouncer import PgBouncer, PoolerSettings


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address, or a name every address of which is one (a name
    is not trusted for what it says: ``/etc/hosts`` may map "localhost" anywhere)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    try:
        return bool(found) and all(ipaddress.ip_address(str(info[4][0])).is_loopback for info in found)
    except ValueError:
        return False


def refuse_unprotected(config: ServiceConfig, host: str) -> None:
    """Beyond loopback, only with credentials someone can hold: else brand data and the queue
    would be served to nobody, and an operator would be tempted to switch the checks off."""
    if is_loopback(host) or credentials_configured(config):
        return
    raise NoCredentialsError(f"refusing to listen on {host}: no API key is active and {ADMIN_TOKEN_ENV} is not set "
                             "(create one with `truelabel-db keys create --scope service`)")


def serve(config: ServiceConfig, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          pooler: PoolerSettings | None = None, pooler_dir: Path | None = None, keep_alive: float = 75.0,
          forwarded_allow_ips: str | None = None, announce: Callable[[str], None] = lambda _: None) -> None:
    import uvicorn

    os.environ.pop(ADMIN_TOKEN_ENV, None)   # serve's caller took its digest (take_admin_token); no child gets it
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
                    timeout_keep_alive=int(keep_alive), proxy_headers=forwarded_allow_ips is not None,
                    forwarded_allow_ips=forwarded_allow_ips)
    finally:
        if bouncer is not None:
            bouncer.stop()
