"""What a scan pays for its rate limit: this worker's bucket in memory vs the shared one in Redis.

Both limiters are asked the same way the service asks them (``RateLimiter.admit``, awaited),
for addresses spread over a few thousand clients, one at a time (the latency a scan pays) and
``concurrency`` at once (what one worker's event loop gets through). The rate is set high
enough that nothing is refused: the cost measured is counting, not refusing.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

from truelabel_db.service.limits import RateLimiter
from truelabel_db.service.shared_limits import SharedCounters

CLIENTS = 5000


@dataclass(frozen=True)
class LimitRun:
    limiter: str
    sequential_us: float          # median per admit, one at a time
    concurrent_per_second: float  # median admits a second with ``concurrency`` at once
    refused: int


@dataclass(frozen=True)
class LimitsBench:
    admits: int
    concurrency: int
    rounds: int
    runs: list[LimitRun]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "runs": [asdict(r) for r in self.runs]}


def address(n: int) -> str:
    return f"10.{(n // 65536) % 256}.{(n // 256) % 256}.{n % 256}"


async def _sequential(limiter: RateLimiter, admits: int) -> float:
    started = time.perf_counter()
    for n in range(admits):
        await limiter.admit(address(n % CLIENTS))
    return (time.perf_counter() - started) / admits * 1e6


async def _concurrent(limiter: RateLimiter, admits: int, concurrency: int) -> float:
    async def one_client_stream(start: int) -> None:
        for n in range(start, admits, concurrency):
            await limiter.admit(address(n % CLIENTS))

    started = time.perf_counter()
    await asyncio.gather(*(one_client_stream(s) for s in range(concurrency)))
    return admits / (time.perf_counter() - started)


async def _measure(name: str, limiter: RateLimiter, admits: int, concurrency: int, rounds: int) -> LimitRun:
    sequential = [await _sequential(limiter, admits) for _ in range(rounds)]
    concurrent = [await _concurrent(limiter, admits, concurrency) for _ in range(rounds)]
    return LimitRun(name, round(statistics.median(sequential), 1), round(statistics.median(concurrent)),
                    limiter.refused)


def run_limits_bench(redis_url: str, *, admits: int = 5000, concurrency: int = 50, rounds: int = 3) -> LimitsBench:
    async def run() -> list[LimitRun]:
        rate, burst = 1e5, 10**6   # never refuses: counting is what is measured
        shared = SharedCounters(redis_url, timeout=2.0, connections=max(64, concurrency))
        try:
            local = await _measure("this worker's buckets (in memory)", RateLimiter(rate, burst), admits,
                                   concurrency, rounds)
            shared_run = await _measure("shared buckets (Redis, one script call)",
                                        RateLimiter(rate, burst, shared), admits, concurrency, rounds)
            if shared.fallbacks or shared.busy:
                raise RuntimeError(f"Redis at {redis_url} did not answer: the shared figures would be local ones")
            return [local, shared_run]
        finally:
            await shared.close()

    return LimitsBench(admits, concurrency, rounds, asyncio.run(run()))
