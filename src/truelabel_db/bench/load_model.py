"""The load generator of ``bench load``: people, not a hammer.

Two shapes of load, both open-loop in their arrivals, so a slow service meets more work, not
less, and every latency is measured from the moment the request was *due*, not from when the
generator got round to sending it (a closed loop of clients hides queueing: coordinated
omission):

- ``Users``: ``users`` people arrive at random (a Poisson process over ``ramp`` seconds), each
  with a keep-alive connection of their own, and from then on alternate a request and a think
  time (exponential, mean ``think`` seconds). 5,000 users thinking 5 s make about 1,000
  requests/s. Mixes: ``read`` (product pages, dashboards, analytics, queue, search, the list)
  and ``scan`` (consumer scans, some product pages).
- ``Arrivals``: requests arrive at ``rate`` per second (Poisson), each on the first free one of
  ``connections`` keep-alive connections (a load balancer's pool in front of the service);
  waiting for a free connection counts in the latency. Mixes: ``scans`` (``POST /scans``) and
  ``batch`` (``POST /scans/batch`` with ``batch_rows`` scans, each with its own id and time).

Only requests due inside the measured window count; those due during the ramp or warm-up are
not measured, and the ones in flight at the end are awaited (each bounded by the client
timeout), so a slow answer is never dropped from the figures. The generator stays bounded: a
loopback target only, at most ``MAX_USERS`` users or ``MAX_RATE`` requests/s, at most
``MAX_SECONDS`` per run. It also measures itself: ``late_p99_ms`` is how late it sent its
requests (its own event loop falling behind), which says whether a figure is the service's or
the generator's.

aiohttp rather than Locust: see BENCHMARKS.md ("the generator") for the measurement; in short,
on these 2 cores aiohttp spent less CPU per request, measured latency from the due time, and
held 5,000 connections in one process.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from truelabel_db.extras import require

require("bench", "the load generator")

import aiohttp  # noqa: E402 (after the check that names the missing extra)

MAX_USERS = 20_000
MAX_RATE = 20_000.0
MAX_SECONDS = 600.0
TIMEOUT = 10.0
LOOPBACK = ("127.0.0.1", "::1", "localhost")
TOKEN_ENV = "TRUELABEL_LOAD_TOKEN"   # the API key the read mix sends (brand data and the queue need one)


def auth_headers(token: str | None) -> dict[str, str]:
    """The requests' credentials: the given token, else $TRUELABEL_LOAD_TOKEN, else none."""
    import os

    chosen = token or os.environ.get(TOKEN_ENV)
    return {"Authorization": f"Bearer {chosen}"} if chosen else {}


@dataclass(frozen=True)
class Targets:
    """What requests ask for, sampled from the data once: products, brands, words, QR codes."""

    products: list[str]
    brands: list[str]
    words: list[str]
    codes: list[str]


@dataclass(frozen=True)
class Users:
    users: int
    mix: str = "read"
    think: float = 5.0
    ramp: float = 15.0
    seconds: float = 30.0

    def describe(self) -> str:
        return f"{self.users:,} users, {self.mix}"


@dataclass(frozen=True)
class Arrivals:
    rate: float
    mix: str = "scans"
    connections: int = 256
    warmup: float = 5.0
    seconds: float = 30.0
    batch_rows: int = 500

    def describe(self) -> str:
        if self.mix == "batch":
            return f"batches of {self.batch_rows} at {self.rate:g}/s"
        return f"{self.mix} at {self.rate:,.0f}/s"


@dataclass
class Measured:
    load: str
    connections: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    writes: int = 0
    lateness_ms: list[float] = field(default_factory=list)
    by_route: dict[str, list[float]] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    def percentile(self, p: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)

    def routes(self) -> dict[str, dict[str, Any]]:
        """Each route's share and latency: which request a p99 is made of."""
        out = {}
        for route, samples in sorted(self.by_route.items()):
            ordered = sorted(samples)
            out[route] = {"requests": len(ordered), "p50_ms": round(ordered[len(ordered) // 2], 1),
                          "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1)}
        return out

    def to_dict(self) -> dict[str, Any]:
        late = sorted(self.lateness_ms)
        return {"load": self.load, "connections": self.connections, "seconds": self.seconds,
                "requests": self.requests, "rps": round(self.requests / self.seconds, 1),
                "writes_per_s": round(self.writes / self.seconds, 1), "writes": self.writes,
                "p50_ms": self.percentile(0.5), "p99_ms": self.percentile(0.99), "p999_ms": self.percentile(0.999),
                "errors": sum(self.errors.values()), "error_kinds": dict(self.errors),
                "late_p99_ms": round(late[int(0.99 * (len(late) - 1))], 1) if late else None,
                "routes": self.routes()}


def check_bounds(base: str, load: Users | Arrivals) -> None:
    """Loopback only, and bounded in count and time: the generator is not a weapon."""
    if urlsplit(base).hostname not in LOOPBACK:
        raise ValueError(f"the load generator targets loopback only, not {base}")
    seconds = load.seconds + (load.ramp if isinstance(load, Users) else load.warmup)
    if seconds > MAX_SECONDS:
        raise ValueError(f"a run is at most {MAX_SECONDS:.0f} s")
    if isinstance(load, Users) and not 0 < load.users <= MAX_USERS:
        raise ValueError(f"users must be between 1 and {MAX_USERS}")
    if isinstance(load, Arrivals) and not 0 < load.rate <= MAX_RATE:
        raise ValueError(f"the rate must be between 0 and {MAX_RATE:.0f}/s")


# -- what a request is -----------------------------------------------------------------------
def _skewed(rng: random.Random, items: list[str]) -> str:
    """Popular first: index by a Pareto draw, as real traffic concentrates on a few items."""
    return items[min(len(items) - 1, int(rng.paretovariate(1.2)) - 1)]


def request_for(mix: str, t: Targets, rng: random.Random, batch_rows: int = 500) -> tuple[str, str, Any]:
    roll = rng.random()
    if mix == "batch":
        now = datetime.now(timezone.utc).isoformat()
        return "POST", "/scans/batch", {"scans": [
            {"qr_code": _skewed(rng, t.codes), "id": str(uuid.uuid4()),
             "scanned_at": now, "user_agent": "bench-collector"} for _ in range(batch_rows)]}
    if mix == "scans":
        return "POST", "/scans", {"qr_code": _skewed(rng, t.codes), "user_agent": "bench"}
    if mix == "scan":
        if roll < 0.9:
            return "POST", "/scans", {"qr_code": _skewed(rng, t.codes), "user_agent": "bench"}
        return "GET", f"/products/{_skewed(rng, t.products)}", None
    if roll < 0.40:
        return "GET", f"/products/{_skewed(rng, t.products)}", None
    if roll < 0.55:
        return "GET", f"/brands/{_skewed(rng, t.brands)}/dashboard", None
    if roll < 0.70:
        return "GET", f"/brands/{_skewed(rng, t.brands)}/analytics", None
    if roll < 0.80:
        return "GET", "/validations/queue?limit=100", None
    if roll < 0.90:
        return "GET", f"/search?q={rng.choice(t.words)}", None
    return "GET", "/products?limit=100", None


async def _send(session: aiohttp.ClientSession, base: str, request: tuple[str, str, Any],
                due: float, window: tuple[float, float], measured: Measured) -> None:
    method, path, body = request
    counted = window[0] <= due < window[1]
    if counted:
        measured.lateness_ms.append(max(0.0, time.perf_counter() - due) * 1000)
    try:
        async with session.request(method, base + path, json=body) as response:
            payload = await response.read()
            error = None if response.status < 400 else f"HTTP {response.status}"
    except asyncio.TimeoutError:
        error = "timeout"
    except aiohttp.ClientError as exc:
        error = type(exc).__name__
    if not counted:
        return
    elapsed = (time.perf_counter() - due) * 1000
    measured.latencies_ms.append(elapsed)
    measured.by_route.setdefault(route_of(path), []).append(elapsed)
    if error is not None:
        measured.errors[error] += 1
    elif method == "POST":
        measured.writes += _rows_written(path, payload)


def route_of(path: str) -> str:
    """``/brands/<id>/dashboard`` → ``/brands/{id}/dashboard``: requests grouped by route."""
    parts = path.split("?")[0].strip("/").split("/")
    if parts[0] in ("products", "brands") and len(parts) > 1:
        parts[1] = "{id}"
    return "/" + "/".join(parts)


def _rows_written(path: str, payload: bytes) -> int:
    """Durable rows the answer acknowledges: one per scan; a batch says how many it stored."""
    if path != "/scans/batch":
        return 1
    import orjson

    return int(orjson.loads(payload).get("inserted", 0))


async def _until(moment: float) -> None:
    delay = moment - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


# -- people who think --------------------------------------------------------------------------
async def run_users(base: str, targets: Targets, load: Users, seed: int = 1, token: str | None = None) -> Measured:
    check_bounds(base, load)
    rng = random.Random(seed)
    start = time.perf_counter() + 0.5
    window = (start + load.ramp, start + load.ramp + load.seconds)
    arrivals = sorted(start + rng.uniform(0, load.ramp) for _ in range(load.users))
    measured = Measured(load.describe(), load.users, load.seconds)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    headers = auth_headers(token)
    await asyncio.gather(*(_person(base, targets, load, arrival, window, measured, timeout, seed * 100_003 + n,
                                   headers) for n, arrival in enumerate(arrivals)))
    return measured


async def _person(base: str, targets: Targets, load: Users, arrival: float, window: tuple[float, float],
                  measured: Measured, timeout: aiohttp.ClientTimeout, seed: int, headers: dict[str, str]) -> None:
    rng = random.Random(seed)
    await _until(arrival)
    connector = aiohttp.TCPConnector(limit=1, keepalive_timeout=60)   # the person's own connection
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:
        due = arrival
        while due < window[1]:
            await _until(due)
            await _send(session, base, request_for(load.mix, targets, rng), due, window, measured)
            due = time.perf_counter() + rng.expovariate(1 / load.think)


# -- arrivals at a rate ------------------------------------------------------------------------
async def run_arrivals(base: str, targets: Targets, load: Arrivals, seed: int = 1,
                       token: str | None = None) -> Measured:
    check_bounds(base, load)
    rng = random.Random(seed)
    start = time.perf_counter() + 0.5
    window = (start + load.warmup, start + load.warmup + load.seconds)
    measured = Measured(load.describe(), load.connections, load.seconds)
    connector = aiohttp.TCPConnector(limit=load.connections, keepalive_timeout=60)
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=TIMEOUT),
                                     headers=auth_headers(token)) as session:
        due = start
        while due < window[1]:
            await _until(due)
            now = time.perf_counter()
            while due <= now and due < window[1]:   # every arrival already due, in one tick
                request = request_for(load.mix, targets, rng, load.batch_rows)
                task = asyncio.create_task(_send(session, base, request, due, window, measured))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                due += rng.expovariate(load.rate)
        await asyncio.gather(*tasks)
    return measured


def main() -> None:
    """``python -m truelabel_db.bench.load_model``: one run in a process of its own (so that its
    CPU time is measurable apart), targets from a JSON file, the result as JSON on stdout."""
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--targets", required=True, type=Path)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--mix", default="read")
    parser.add_argument("--think", type=float, default=5.0)
    parser.add_argument("--ramp", type=float, default=15.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    targets = Targets(**json.loads(args.targets.read_text()))
    load = Users(args.users, args.mix, args.think, args.ramp, args.seconds)
    print(json.dumps(asyncio.run(run_users(args.base, targets, load)).to_dict()))


if __name__ == "__main__":
    main()
