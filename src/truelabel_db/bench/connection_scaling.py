"""What PgBouncer buys: client connections grow to thousands, PostgreSQL backends do not.

``connection_scaling(url, counts)`` opens each count of client connections, first straight to
PostgreSQL, then through a PgBouncer in transaction mode started for the purpose; every client
runs a query once a second for a few seconds, while a monitor counts the database's backends.
Straight to the server, every client is a backend until ``max_connections`` refuses the rest;
through the pooler, all of them are served by at most ``pool_size`` backends. Run it against a
server of your own: the direct half fills its connection slots on purpose.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from truelabel_db.postgres import one
from truelabel_db.service.pgbouncer import PgBouncer, PoolerSettings

MAX_CLIENTS = 5000


def connection_scaling(url: str, counts: tuple[int, ...], *, pool_size: int = 20,
                       seconds: float = 4.0) -> list[dict[str, Any]]:
    if max(counts, default=0) > MAX_CLIENTS:
        raise ValueError(f"at most {MAX_CLIENTS} client connections")
    dbname = str(conninfo_to_dict(url)["dbname"])
    rows = [measure_clients("PostgreSQL", url, url, dbname, n, seconds, prepare=True) for n in counts]
    with PgBouncer(url, settings=PoolerSettings(pool_size=pool_size, max_client_conn=MAX_CLIENTS + 100)) as bouncer:
        rows += [measure_clients("PgBouncer", bouncer.url, url, dbname, n, seconds, prepare=False) for n in counts]
    return rows


def measure_clients(through: str, client_url: str, monitor_url: str, dbname: str, clients: int, seconds: float, *,
                    prepare: bool) -> dict[str, Any]:
    """``clients`` connections to ``client_url``, each querying once a second; the most backends
    of ``dbname`` seen meanwhile (through ``monitor_url``, straight to the server)."""
    peak = [0]
    stop = threading.Event()

    def monitor() -> None:
        with psycopg.connect(monitor_url, autocommit=True) as conn:
            while not stop.wait(0.2):
                (count,) = one(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND "
                                        "backend_type = 'client backend' AND pid <> pg_backend_pid()",
                                        (dbname,)))
                peak[0] = max(peak[0], count)

    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    try:
        outcome = asyncio.run(_clients(client_url, clients, seconds, prepare))
    finally:
        stop.set()
        watcher.join(timeout=5)
    return {"through": through, "clients": clients, "connected": outcome["connected"],
            "queries": outcome["queries"], "refused": dict(outcome["refused"]), "backends": peak[0]}


async def _clients(url: str, clients: int, seconds: float, prepare: bool) -> dict[str, Any]:
    outcome: dict[str, Any] = {"connected": 0, "queries": 0, "refused": Counter()}
    opening = asyncio.Semaphore(100)   # connect a hundred at a time: a crowd, not a stampede
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds + 1.0

    async def client(n: int) -> None:
        try:
            async with opening:
                conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=10,
                                                            prepare_threshold=5 if prepare else None)
        except psycopg.OperationalError as exc:
            outcome["refused"][_reason(exc)] += 1
            return
        outcome["connected"] += 1
        try:
            await asyncio.sleep((n % 100) / 100)   # spread the queries over the second
            while loop.time() < end:
                await conn.execute("SELECT 1")
                outcome["queries"] += 1
                await asyncio.sleep(1.0)
        except psycopg.Error as exc:
            outcome["refused"][_reason(exc)] += 1
        finally:
            await conn.close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    return outcome


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1][:80] if text else type(exc).__name__
