"""Live progress for long steps: Rich bars on a terminal, plain lines elsewhere.

The library reports through this small interface; whether a person sees animated bars (a
terminal), a line per finished table (a log file) or nothing (a test) is the caller's choice.
"""

from __future__ import annotations

import threading
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class ProgressSink(Protocol):
    def table_started(self, table: str, total: int) -> None: ...

    def advance(self, table: str, rows: int) -> None: ...

    def note(self, message: str) -> None: ...

    def close(self) -> None: ...


class SilentProgress:
    def table_started(self, table: str, total: int) -> None:
        pass

    def advance(self, table: str, rows: int) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def close(self) -> None:
        pass


class _RowsPerSecond(TextColumn):
    def __init__(self) -> None:
        super().__init__("")

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:>10,.0f} rows/s" if speed else " " * 15)


class RichProgress:
    """Bars per table with rows/s and ETA, thread-safe (workers report from their threads)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskID] = {}
        self._live = console.is_terminal
        self._done: dict[str, int] = {}
        self._totals: dict[str, int] = {}
        self._progress = Progress(
            TextColumn("[bold]{task.description:<26}"), BarColumn(), MofNCompleteColumn(),
            _RowsPerSecond(), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console, transient=False, disable=not self._live)
        if self._live:
            self._progress.start()

    def table_started(self, table: str, total: int) -> None:
        with self._lock:
            if table not in self._tasks:
                self._tasks[table] = self._progress.add_task(table, total=total)
                self._totals[table] = total
                self._done[table] = 0

    def advance(self, table: str, rows: int) -> None:
        with self._lock:
            self._progress.advance(self._tasks[table], rows)
            self._done[table] += rows
            if not self._live and self._done[table] >= self._totals[table]:
                self.console.print(f"copied {table}: {self._done[table]:,} rows")

    def note(self, message: str) -> None:
        self.console.print(message)

    def close(self) -> None:
        if self._live:
            self._progress.stop()
