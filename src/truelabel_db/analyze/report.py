"""What ``analyze`` found, as plain data: rendered by Rich for people, dumped as JSON for machines."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ColumnReport:
    table: str
    column: str
    declared_type: str
    target: str | None
    storage: dict[str, int] = field(default_factory=dict)      # typeof() -> rows
    encodings: dict[str, int] = field(default_factory=dict)    # e.g. epoch_ms, json_valid
    repaired: dict[str, int] = field(default_factory=dict)     # repair note -> rows
    refused: dict[str, int] = field(default_factory=dict)      # reason -> rows
    refused_samples: dict[str, list[str]] = field(default_factory=dict)
    distinct_values: dict[str, int] | None = None              # enum-like columns only
    outside_enum: list[str] = field(default_factory=list)


@dataclass
class TableReport:
    name: str
    rows: int
    bytes: int | None
    columns: int
    target: str | None


@dataclass
class OrphanReport:
    table: str
    column: str
    parent: str
    rows: int
    samples: list[str]


@dataclass
class MissingIndex:
    table: str
    columns: tuple[str, ...]
    why: str


@dataclass
class QueryShape:
    name: str
    shape: str
    queries: int
    fix: str


@dataclass
class Finding:
    severity: str
    message: str


@dataclass
class AnalysisReport:
    path: str
    size_bytes: int
    journal_mode: str
    tables: list[TableReport] = field(default_factory=list)
    columns: list[ColumnReport] = field(default_factory=list)
    orphans: list[OrphanReport] = field(default_factory=list)
    missing_indexes: list[MissingIndex] = field(default_factory=list)
    json_in_text: list[str] = field(default_factory=list)
    lists_in_text: list[str] = field(default_factory=list)
    query_shapes: list[QueryShape] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # optional tables and nullable columns the file lacks
    required_missing: list[str] = field(default_factory=list)  # required ones: copy and capture refuse the file
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
