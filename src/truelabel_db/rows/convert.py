"""The slow path: rows SQLite could not vouch for, repaired in Python or quarantined."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from truelabel_db.catalog.quarantine import QuarantineRecord, encode_row
from truelabel_db.schema.copytext import NULL
from truelabel_db.schema.mapping import TableMap
from truelabel_db.schema.transforms import Unconvertible


@dataclass
class ConvertedRow:
    raw: tuple[Any, ...]
    line: bytes | None
    record: QuarantineRecord | None
    repairs: list[str]


@dataclass
class ConvertedRows:
    rows: list[ConvertedRow] = field(default_factory=list)
    repairs: Counter[str] = field(default_factory=Counter)

    @property
    def payload(self) -> bytes:
        return b"".join(r.line for r in self.rows if r.line is not None)

    @property
    def quarantined(self) -> list[QuarantineRecord]:
        return [r.record for r in self.rows if r.record is not None]

    @property
    def repaired_rows(self) -> int:
        return sum(1 for r in self.rows if r.line is not None and r.repairs)


def quarantine_record(table: TableMap, raw: tuple[Any, ...], stage: str,
                      reasons: list[dict[str, str]]) -> QuarantineRecord:
    return QuarantineRecord(
        legacy_table=table.legacy, legacy_key=table.legacy_key_of(raw), stage=stage,
        reasons=reasons, original=encode_row(table.legacy_columns, raw))


def convert_row(table: TableMap, raw: tuple[Any, ...]) -> ConvertedRow:
    """Every column converted, or a quarantine record listing every column that failed."""
    fields: list[str] = []
    reasons: list[dict[str, str]] = []
    repairs: list[str] = []
    for col, value in zip(table.columns, raw):
        try:
            out = col.convert(value)
        except Unconvertible as exc:
            reasons.append({"column": col.legacy, "reason": exc.reason})
            continue
        if out.repair:
            repairs.append(f"{col.legacy}: {out.repair}")
        fields.append(NULL if out.value is None else col.transform.copy_text(out.value))
    if table.extra:
        extra = table.extra_transform
        fields.append(extra.copy_text(extra.convert_values(raw[len(table.columns):]).value))
    if reasons:
        return ConvertedRow(raw, None, quarantine_record(table, raw, "convert", reasons), [])
    return ConvertedRow(raw, ("\t".join(fields) + "\n").encode("utf-8"), None, repairs)


def convert_rows(table: TableMap, rows: list[tuple[Any, ...]]) -> ConvertedRows:
    out = ConvertedRows()
    for raw in rows:
        converted = convert_row(table, raw)
        out.rows.append(converted)
        out.repairs.update(converted.repairs)
    return out
