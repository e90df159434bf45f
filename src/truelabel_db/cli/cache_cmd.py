"""``cache``: warm it, read its hit ratios, raise an invalidation event by hand."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from truelabel_db.cli.options import JsonOption
from truelabel_db.cli.output import emit_json, err
from truelabel_db.cli.serve_cmd import (
    DATABASE_ENV,
    DatabaseOption,
    RedisOption,
    resolve_database,
    resolve_redis,
)
from truelabel_db.errors import ConfigError

if TYPE_CHECKING:  # imported when a command runs: the CLI starts without the cache's dependencies
    from truelabel_db.cache import LayeredCache
    from truelabel_db.hotpaths.base import HotPaths
    from truelabel_db.hotpaths.cached import CachedHotPaths

cache_app = typer.Typer(no_args_is_help=True, help="The layered cache (memory, Redis, PostgreSQL).")


def register(app: typer.Typer) -> None:
    app.add_typer(cache_app, name="cache")


def _require_redis(url: str | None) -> str:
    if not url:
        raise ConfigError("no Redis: pass --redis or set TRUELABEL_REDIS_URL")
    return url


def _open(database: str | None, redis_url: str | None) -> tuple[HotPaths, LayeredCache, CachedHotPaths]:
    from truelabel_db.cache import LayeredCache
    from truelabel_db.hotpaths import PostgresHotPaths, open_hot_paths
    from truelabel_db.hotpaths.cached import CachedHotPaths

    paths = open_hot_paths(resolve_database(database), pool_size=2)
    pool = paths.pool if isinstance(paths, PostgresHotPaths) else None
    cache = LayeredCache(_require_redis(resolve_redis(redis_url)), pool)
    return paths, cache, CachedHotPaths(paths, cache)


@cache_app.command("warm")
def warm(database: DatabaseOption = None, redis_url: RedisOption = None,
         popular: Annotated[int, typer.Option(min=1, help="How many of the most scanned products.")] = 100,
         json_out: JsonOption = False) -> None:
    """Load popular products, the active validation queue and brand dashboards into the cache."""
    from dataclasses import asdict

    from truelabel_db.cache.warming import Warmer

    paths, cache, cached = _open(database, redis_url)
    try:
        warmed = Warmer(cached, popular=popular).warm()
    finally:
        cache.close()
        paths.close()
    if json_out:
        emit_json(asdict(warmed))
    err.print(f"warmed {warmed.products} products, {warmed.queues} queue page, {warmed.dashboards} dashboards")


@cache_app.command("stats")
def stats(redis_url: RedisOption = None, json_out: JsonOption = False) -> None:
    """Hits, misses and hit ratio per layer, summed over every process using this Redis."""
    from truelabel_db.cache.redis_layer import RedisLayer
    from truelabel_db.cache.stats import LAYERS, hit_ratios

    layer = RedisLayer(_require_redis(resolve_redis(redis_url)))
    counts = layer.read_stats()
    if not layer.available:
        raise ConfigError("Redis is unreachable: no shared cache statistics to read")
    ratios = hit_ratios(counts)
    if json_out:
        emit_json({"counts": counts, "hit_ratio": ratios})
        return
    view = Table("layer", "hits", "misses", "hit ratio")
    for name in LAYERS:
        ratio = ratios[name]
        view.add_row(name, f"{counts.get(f'{name}_hits', 0):,}", f"{counts.get(f'{name}_misses', 0):,}",
                     "-" if ratio is None else f"{ratio:.1%}")
    overall = ratios["overall"]
    view.add_row("all", "", "", "-" if overall is None else f"{overall:.1%}")
    err.print(view)
    err.print(", ".join(f"{k}: {counts.get(k, 0):,}" for k in ("loads", "waits", "discarded", "invalidations")))


@cache_app.command("invalidate")
def invalidate(event: Annotated[str, typer.Argument(help="e.g. product:update, validation:create")],
               context: Annotated[str, typer.Option(help='JSON, e.g. \'{"id": "...", "userId": "..."}\'')] = "{}",
               database: DatabaseOption = None, redis_url: RedisOption = None) -> None:
    """Apply an event's invalidation rules now, in every layer and every process's memory."""
    from truelabel_db.cache import LayeredCache
    from truelabel_db.cache.invalidation import Invalidator
    from truelabel_db.hotpaths import PostgresHotPaths, open_hot_paths

    try:
        parsed = json.loads(context)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--context is not JSON: {exc.msg}") from exc
    if not isinstance(parsed, dict):
        raise ConfigError("--context must be a JSON object")
    chosen = database or os.environ.get(DATABASE_ENV)   # optional: only L3 needs the database
    paths = open_hot_paths(chosen, pool_size=1) if chosen else None
    pool = paths.pool if isinstance(paths, PostgresHotPaths) else None
    cache = LayeredCache(_require_redis(resolve_redis(redis_url)), pool)
    try:
        invalidator = Invalidator(cache)
        planned = invalidator.invalidate(event, parsed)
        invalidator.flush()  # delayed rules too: a person asked for it now
    finally:
        cache.close()
        if paths is not None:
            paths.close()
    err.print(f"{event}: {len(planned.keys)} keys, {len(planned.groups) + len(planned.delayed)} groups invalidated")
