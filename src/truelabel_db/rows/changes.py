"""What a stage asks the rows layer to do to one table: make these rows equal to SQLite's."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TableChanges:
    """Keys whose target row must equal SQLite's current row (``upserts``), or be gone (``deletes``)."""

    upserts: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # legacy key -> current row
    deletes: set[str] = field(default_factory=set)
