"""The operation log: one JSON line per operation, what was planned and how it went.

A failing seed is diagnosed by reading its log; two runs of a seed are compared by their
streams (the planned part of each line), which must be equal whatever the outcomes were.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from truelabel_db.workload.statements import Operation
from truelabel_db.workload.summary import OperationResult

# Keys of a log line that describe how the operation went rather than what it was.
OUTCOME_KEYS = frozenset({"outcome", "rows", "target", "step", "reason", "message", "lock_retries",
                          "fence_retries"})


def log_path(directory: Path, seed: int, writer: int) -> Path:
    return directory / f"workload-seed{seed}-writer{writer}.jsonl"


class OpLog:
    """Appends lines to a writer's log; a no-op without a directory."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("w", encoding="utf-8")

    def write(self, number: int, operation: Operation, result: OperationResult) -> None:
        if self._file is None:
            return
        line = {"n": number, **operation.to_dict(), **result.to_dict()}
        self._file.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_log(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)


def stream(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The planned part of each line: what two runs of one seed must agree on."""
    return [{k: v for k, v in record.items() if k not in OUTCOME_KEYS} for record in records]
