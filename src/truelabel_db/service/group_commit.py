"""Group commit for scans: many requests, one transaction, and no answer before the commit.

Each ``POST /scans`` hands its scan to ``GroupCommitter.submit`` and awaits it. A flusher takes
the first scan waiting, lets others gather for ``window`` seconds (or until ``max_batch``), and
writes the whole group with one multi-row INSERT: one transaction, one WAL flush. Only when the
database has confirmed the commit does each waiting request get its answer; durability is not
traded (no ``synchronous_commit = off``, no fire-and-forget queue). Several flushers
(``flushers``) keep a batch filling while another one commits.

What a crash of the service loses, instant by instant:

- a scan received, waiting in the queue or in a batch being written: lost, and never
  acknowledged; its client sees the connection fail and may send it again;
- a batch whose COMMIT PostgreSQL has done but whose answer had not yet left: stored, never
  acknowledged; a client that retries records it twice (at least once). The batch endpoint is
  the exactly-once path: rows carry a client ``id`` and ``scanned_at`` and a retried row is
  skipped;
- anything acknowledged: nothing. The answer leaves after the commit, and with PostgreSQL's
  ``synchronous_commit`` on (checked at start, shown in ``/health``) a commit is on disk before
  it is confirmed, so a crash of PostgreSQL or of the machine loses nothing acknowledged either.

A batch the database refuses because of one row's data is written again one scan at a time, so
one bad scan fails alone and the others are kept. A batch that fails for any other reason (the
database unreachable, the cutover gate held too long) fails every scan in it, unacknowledged.
The queue is bounded: past ``max_queued`` waiting scans a new one is refused at once (the
service answers 503) rather than queueing without limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from truelabel_db.hotpaths.awaitable import Overloaded
from truelabel_db.hotpaths.base import Scan
from truelabel_db.hotpaths.shape import Record

__all__ = ["GroupCommitConfig", "GroupCommitStats", "GroupCommitter", "Overloaded"]
Writer = Callable[[Sequence[Scan]], Awaitable[list[Record | None]]]
Waiting = tuple[Scan, "asyncio.Future[Record | None]"]


@dataclass(frozen=True)
class GroupCommitConfig:
    window: float = 0.002      # seconds a batch waits for company after its first scan
    max_batch: int = 1000      # scans in one INSERT at most
    flushers: int = 2          # batches being written at once, each on its own connection
    max_queued: int = 20_000   # scans waiting at most, beyond which new ones are refused


@dataclass
class GroupCommitStats:
    batches: int = 0
    scans: int = 0
    largest: int = 0
    failed_batches: int = 0
    isolated_batches: int = 0   # refused for one row's data, then written one scan at a time

    def to_dict(self) -> dict[str, Any]:
        mean = round(self.scans / self.batches, 1) if self.batches else None
        return {"batches": self.batches, "scans": self.scans, "mean_batch": mean, "largest": self.largest,
                "failed_batches": self.failed_batches, "isolated_batches": self.isolated_batches}


class GroupCommitter:
    def __init__(self, write: Writer, config: GroupCommitConfig = GroupCommitConfig(), *,
                 data_error: Callable[[BaseException], bool] = lambda _: False) -> None:
        self._write, self.config, self._data_error = write, config, data_error
        self._queue: asyncio.Queue[Waiting] = asyncio.Queue()
        self._flushers: list[asyncio.Task[None]] = []
        self._closing = False
        self.stats = GroupCommitStats()

    def start(self) -> "GroupCommitter":
        self._flushers = [asyncio.create_task(self._flush_forever(), name=f"group-commit-{n}")
                          for n in range(self.config.flushers)]
        return self

    async def submit(self, scan: Scan) -> Record | None:
        """The scanned product (None for an unknown code), once the scan is committed."""
        if not self._flushers or self._closing:
            raise Overloaded("the service is shutting down; retry shortly")
        if self._queue.qsize() >= self.config.max_queued:
            raise Overloaded(f"{self._queue.qsize()} scans already wait for a commit; retry shortly")
        done: asyncio.Future[Record | None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((scan, done))
        return await done

    async def close(self) -> None:
        """Refuse new scans, let every accepted one be written, then stop."""
        self._closing = True
        if self._flushers:
            await self._queue.join()
        for task in self._flushers:
            task.cancel()
        await asyncio.gather(*self._flushers, return_exceptions=True)
        self._flushers = []

    async def _flush_forever(self) -> None:
        while True:
            first = await self._queue.get()
            if self.config.window > 0:
                await asyncio.sleep(self.config.window)
            batch = [first, *self._take_batch(self.config.max_batch - 1)]
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _take_batch(self, limit: int) -> list[Waiting]:
        batch: list[Waiting] = []
        while len(batch) < limit and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _commit(self, batch: list[Waiting]) -> None:
        if not batch:
            return
        try:
            found = await self._write([scan for scan, _ in batch])
        except Exception as exc:  # answered to the waiting requests, never raised in the flusher
            if len(batch) > 1 and self._data_error(exc):
                self.stats.isolated_batches += 1
                for one in batch:
                    await self._commit([one])
                return
            self.stats.failed_batches += 1
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        self._count(len(batch))
        for (_, done), product in zip(batch, found):
            if not done.done():   # a request cancelled meanwhile: its scan is stored all the same
                done.set_result(product)

    def _count(self, size: int) -> None:
        self.stats.batches += 1
        self.stats.scans += size
        self.stats.largest = max(self.stats.largest, size)
