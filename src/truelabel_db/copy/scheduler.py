"""Handing work to the copy's workers: chunks largest tables first, and each table's
post-data as soon as its last chunk is in, split into tasks that several workers can share.

A table goes through three stages after its rows: its keys (one task: adding a primary key
locks the table), then each of its indexes (one task each, built side by side), then its
statistics (one task, once the indexes are in). Started while other tables are still loading,
this work fills the moments the workers would otherwise spend waiting on each other, and no
single big table's indexes are left to one worker at the end.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from truelabel_db.catalog.copy_runs import Chunk

CHUNK, KEYS, INDEX, ANALYZE = "chunk", "keys", "index", "analyze"


@dataclass(order=True)
class Task:
    priority: tuple[int, int]
    table: str = field(compare=False)
    kind: str = field(compare=False)
    chunk: Chunk | None = field(compare=False, default=None)
    statement: str | None = field(compare=False, default=None)


class Scheduler:
    """A thread-safe queue that releases each stage of a table when the one before is done."""

    def __init__(self, chunks: list[Chunk], tables_to_finish: list[str],
                 table_rows: Mapping[str, int], indexes: Mapping[str, list[str]]) -> None:
        self._lock = threading.Condition()
        self._heap: list[Task] = []
        self._chunks_left = Counter(c.legacy_table for c in chunks)
        self._indexes_left: Counter[str] = Counter()
        self._indexes = indexes
        self._to_finish = set(tables_to_finish)
        self._in_flight = 0
        self._failed = False
        self._order = itertools.count()
        for chunk in sorted(chunks, key=lambda c: (-table_rows.get(c.legacy_table, 0), c.chunk_no)):
            self._push(1, chunk.legacy_table, CHUNK, chunk=chunk)
        for table in tables_to_finish:
            if not self._chunks_left[table]:
                self._push(0, table, KEYS)

    def _push(self, priority: int, table: str, kind: str, **extra: object) -> None:
        heapq.heappush(self._heap, Task((priority, next(self._order)), table, kind, **extra))  # type: ignore[arg-type]

    def next(self) -> Task | None:
        """The next task, waiting while running ones may still release more; None when done."""
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
            self._release_after(task)
            self._lock.notify_all()

    def _release_after(self, task: Task) -> None:
        table = task.table
        if task.kind == CHUNK:
            self._chunks_left[table] -= 1
            if not self._chunks_left[table] and table in self._to_finish:
                self._push(0, table, KEYS)
        elif task.kind == KEYS:
            statements = self._indexes.get(table, [])
            self._indexes_left[table] = len(statements)
            for statement in statements:
                self._push(0, table, INDEX, statement=statement)
            if not statements:
                self._push(0, table, ANALYZE)
        elif task.kind == INDEX:
            self._indexes_left[table] -= 1
            if not self._indexes_left[table]:
                self._push(0, table, ANALYZE)

    def fail(self) -> None:
        with self._lock:
            self._failed = True
            self._lock.notify_all()
