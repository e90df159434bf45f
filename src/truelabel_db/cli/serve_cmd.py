"""``serve``: the reference service over the hot paths, on either database."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from truelabel_db.cli.options import positive
from truelabel_db.cli.output import err
from truelabel_db.errors import ConfigError

DATABASE_ENV, REDIS_ENV = "TRUELABEL_DATABASE", "TRUELABEL_REDIS_URL"

DatabaseOption = Annotated[str | None, typer.Option(
    "--database", help=f"A legacy SQLite file or a PostgreSQL URL (default: ${DATABASE_ENV}).")]
RedisOption = Annotated[str | None, typer.Option(
    "--redis", help=f"Redis for the L2 cache, the cutover gate, the primary and the per-client limits "
                    f"(default: ${REDIS_ENV}).")]


def resolve_database(database: str | None) -> str:
    chosen = database or os.environ.get(DATABASE_ENV)
    if not chosen:
        raise ConfigError(f"no database: pass --database or set {DATABASE_ENV}")
    return chosen


def resolve_redis(url: str | None) -> str | None:
    return url or os.environ.get(REDIS_ENV)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    database: DatabaseOption = None,
    redis_url: RedisOption = None,
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (their L1 caches are kept "
                                              "coherent over Redis pub/sub).")] = 1,
    cache: Annotated[bool, typer.Option("--cache/--no-cache")] = True,
    primary_file: Annotated[str | None, typer.Option(help="The cutover's primary file.")] = None,
    follow: Annotated[bool, typer.Option("--follow-primary/--no-follow-primary")] = True,
    gate_wait: Annotated[float, typer.Option(min=0, help="Seconds a write waits at a raised gate.")] = 5.0,
    pool_size: Annotated[int, typer.Option(min=1, help="PostgreSQL connections per worker.")] = 20,
    async_pool: Annotated[bool, typer.Option("--async-pool/--thread-pool", help=(
        "Hot paths on psycopg's async pool, or on its blocking pool in threads (faster here)."))] = False,
    pgbouncer: Annotated[bool, typer.Option("--pgbouncer/--no-pgbouncer", help=(
        "Start PgBouncer (transaction mode) and connect the workers through it."))] = False,
    pgbouncer_pool_size: Annotated[int, typer.Option(min=1, help="PostgreSQL backends PgBouncer opens at most.")] = 20,
    pgbouncer_dir: Annotated[Path | None, typer.Option(help="PgBouncer's folder (config, socket, log); "
                                                             "a private temporary one by default.")] = None,
    group_commit_ms: Annotated[float, typer.Option(min=0, help="Milliseconds a batch of scans gathers "
                                                        "before it is committed.")] = 2.0,
    batch_max_rows: Annotated[int, typer.Option(min=1, help="Scans one POST /scans/batch may carry.")] = 1000,
    keep_alive: Annotated[float, typer.Option(
        callback=positive, help="Seconds an idle keep-alive connection is kept.")] = 75.0,
    refresh_every: Annotated[float, typer.Option(min=0, help="Seconds between dashboard view refreshes.")] = 600.0,
    warm_every: Annotated[float, typer.Option(min=0, help="Seconds between cache warmings.")] = 3600.0,
    warm_brands: Annotated[int, typer.Option(min=0, help="Brand dashboards each warming loads.")] = 50,
    legacy_mode: Annotated[str, typer.Option(help="On SQLite: 'best' SQL, or 'app' (the N+1 way).")] = "best",
    replica: Annotated[list[str] | None, typer.Option(
        "--replica", help="A read replica's URL (repeat for several; passwords via ~/.pgpass).")] = None,
    replica_max_lag: Annotated[float, typer.Option(
        min=0, help="Seconds of lag above which a replica gets no reads.")] = 5.0,
    legacy_path: Annotated[str | None, typer.Option(help=(
        "The legacy SQLite file a rollback may move a PostgreSQL-started service back to (a published "
        "primary naming any other database is refused)."))] = None,
    scan_rate: Annotated[float, typer.Option(min=0, help=(
        "Scans a second one client address may send, all workers together when Redis is configured "
        "(0: no limit)."))] = 20.0,
    scan_burst: Annotated[int, typer.Option(min=1, help="Scans one client address may send at once.")] = 40,
    auth_cache_seconds: Annotated[float, typer.Option(min=0, help=(
        "Seconds an API key's check is remembered (how long a revocation takes to reach the service)."))] = 30.0,
    auth_failures_per_minute: Annotated[int, typer.Option(min=0, help=(
        "Failed authentications a client address may make a minute before it is answered 429 (0: no limit)."))] = 20,
    forwarded_allow_ips: Annotated[str | None, typer.Option(envvar="FORWARDED_ALLOW_IPS", help=(
        "Proxies whose X-Forwarded-For is believed (comma-separated addresses or networks, '*' for any); "
        "default: none, the client address is the connection's."))] = None,
) -> None:
    """Serve True Label's hot paths over HTTP (OpenAPI docs at /docs, health at /health).

    PostgreSQL credentials for a primary published by the cutover come from
    $TRUELABEL_TARGET_URL, never from the command line. Brand data, the validation queue and
    the metrics need an API key (`truelabel-db keys create`) or the admin token in
    $TRUELABEL_ADMIN_TOKEN (at least 32 characters; removed from the environment before any
    worker starts); without either, serve listens on loopback only.
    """
    from truelabel_db.extras import require

    require("serve", "`serve`")
    from truelabel_db.service.auth import take_admin_token
    from truelabel_db.service.config import ServiceConfig
    from truelabel_db.service.pgbouncer import PoolerSettings
    from truelabel_db.service.server import serve as run_service

    admin_token_sha256 = take_admin_token()   # first: no child process may inherit the token
    config = ServiceConfig(database=resolve_database(database), redis_url=resolve_redis(redis_url), cache=cache,
                           primary_file=primary_file, follow_primary=follow,
                           postgres_url=os.environ.get("TRUELABEL_TARGET_URL"), gate_wait=gate_wait,
                           pool_size=pool_size, async_pool=async_pool, group_commit_window=group_commit_ms / 1000,
                           batch_max_rows=batch_max_rows, refresh_interval=refresh_every,
                           warm_interval=warm_every, warm_brands=warm_brands, legacy_mode=legacy_mode,
                           replicas=tuple(replica or ()), replica_max_lag=replica_max_lag,
                           legacy_path=legacy_path, scan_rate=scan_rate, scan_burst=scan_burst,
                           auth_cache_seconds=auth_cache_seconds, auth_failures_per_minute=auth_failures_per_minute,
                           admin_token_sha256=admin_token_sha256)
    pooler = PoolerSettings(pool_size=pgbouncer_pool_size) if pgbouncer else None
    run_service(config, host=host, port=port, workers=workers, pooler=pooler, pooler_dir=pgbouncer_dir,
                keep_alive=keep_alive, forwarded_allow_ips=forwarded_allow_ips or None,
                announce=err.print)
