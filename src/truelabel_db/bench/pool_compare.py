"""``bench pools``: psycopg's blocking pool in threads against its async pool, same statements.

Why the service's read path runs the blocking pool in worker threads: for each of a cheap and a
heavier hot path, ``calls`` calls one after another and then from ``concurrency`` threads (the
blocking pool) or tasks (the async pool, on asyncio's loop and on uvloop, which uvicorn uses),
calls/s for each. Both implementations send ``postgres_sql``'s statements, with the same pool
size; only the driver's waiting differs.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from truelabel_db.hotpaths import PostgresHotPaths
from truelabel_db.hotpaths.postgres_async import AsyncPostgresHotPaths


def _threads(call: Callable[[], object], calls: int, concurrency: int) -> float:
    def work(n: int) -> None:
        for _ in range(n):
            call()

    workers = [threading.Thread(target=work, args=(calls // concurrency,)) for _ in range(concurrency)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return calls / (time.perf_counter() - started)


async def _tasks(call: Callable[[], Awaitable[object]], calls: int, concurrency: int) -> float:
    async def work(n: int) -> None:
        for _ in range(n):
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(work(calls // concurrency) for _ in range(concurrency)))
    return calls / (time.perf_counter() - started)


async def _async_side(url: str, brand: str, product: str, calls: int, concurrency: int) -> dict[str, float]:
    paths = await AsyncPostgresHotPaths.open(url, max_size=concurrency)
    try:
        out = {}
        for name, call in (("dashboard", lambda: paths.brand_dashboard(brand)),
                           ("product detail", lambda: paths.product(product))):
            await _tasks(call, 50, 1)   # warm: connections open, statements prepared
            out[f"{name}, one at a time"] = await _tasks(call, calls, 1)
            out[f"{name}, {concurrency} at once"] = await _tasks(call, calls, concurrency)
        return out
    finally:
        await paths.close()


def compare_pools(url: str, *, calls: int = 3000, concurrency: int = 10) -> list[dict[str, Any]]:
    from truelabel_db.extras import require

    require("serve", "`bench pools`")   # uvloop comes with uvicorn[standard]
    import uvloop

    blocking = PostgresHotPaths(url, max_size=concurrency)
    try:
        brand, product = blocking.brands(1)[0], blocking.popular_products(1)[0]
        rows: dict[str, dict[str, Any]] = {}
        for name, call in (("dashboard", lambda: blocking.brand_dashboard(brand)),
                           ("product detail", lambda: blocking.product(product))):
            _threads(call, 50, 1)
            rows[f"{name}, one at a time"] = {"threads": _threads(call, calls, 1)}
            rows[f"{name}, {concurrency} at once"] = {"threads": _threads(call, calls, concurrency)}
    finally:
        blocking.close()
    for loop_name, runner in (("async (asyncio)", asyncio.run), ("async (uvloop)", uvloop.run)):
        for case, rate in runner(_async_side(url, brand, product, calls, concurrency)).items():
            rows[case][loop_name] = rate
    return [{"case": case, **{k: round(v) for k, v in rates.items()}} for case, rates in rows.items()]
