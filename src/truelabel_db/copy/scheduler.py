"""Handing work to the copy's workers: chunks largest tables first, each table's post-data as
soon as its last chunk is in.

A table's keys, indexes and statistics are CPU work for the server; started while larger
tables are still loading, they fill the moments when the workers wait on each other instead
of all landing at the end.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import Counter
from dataclasses import dataclass, field

from truelabel_db.copy.catalog import Chunk


@dataclass(order=True)
class Task:
    priority: tuple[int, int]
    table: str = field(compare=False)
    chunk: Chunk | None = field(compare=False, default=None)

    @property
    def finishes_table(self) -> bool:
        return self.chunk is None


class Scheduler:
    """A thread-safe queue that releases a table's finishing task after its last chunk."""

    def __init__(self, chunks: list[Chunk], tables_to_finish: list[str],
                 table_rows: dict[str, int]) -> None:
        self._lock = threading.Condition()
        self._heap: list[Task] = []
        self._remaining = Counter(c.legacy_table for c in chunks)
        self._to_finish = set(tables_to_finish)
        self._in_flight = 0
        self._failed = False
        self._order = itertools.count()
        for chunk in sorted(chunks, key=lambda c: (-table_rows.get(c.legacy_table, 0), c.chunk_no)):
            heapq.heappush(self._heap, Task((1, next(self._order)), chunk.legacy_table, chunk))
        for table in tables_to_finish:
            if not self._remaining[table]:
                self._release(table)

    def _release(self, table: str) -> None:
        if table in self._to_finish:
            self._to_finish.discard(table)
            heapq.heappush(self._heap, Task((0, next(self._order)), table))

    def next(self) -> Task | None:
        """The next task, waiting while others may still release one; None when all is done."""
        with self._lock:
            while not self._heap and self._in_flight and not self._failed:
                self._lock.wait()
            if self._failed or not self._heap:
                return None
            self._in_flight += 1
            return heapq.heappop(self._heap)

    def done(self, task: Task) -> None:
        with self._lock:
            self._in_flight -= 1
            if task.chunk is not None:
                self._remaining[task.table] -= 1
                if not self._remaining[task.table]:
                    self._release(task.table)
            self._lock.notify_all()

    def fail(self) -> None:
        with self._lock:
            self._failed = True
            self._lock.notify_all()

    def chunks_left(self) -> int:
        with self._lock:
            return sum(self._remaining.values())
