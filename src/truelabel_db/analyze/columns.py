"""Per-column profiles: storage classes, encodings, enum-like values, what the target refuses.

Counting happens in SQLite, one scan per table for every column at once; only the values a
check flags come to Python, where the copy's own transforms say what would be repaired and
what refused. The report therefore predicts exactly what ``copy`` will do.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from typing import Any

from truelabel_db.analyze.report import ColumnReport
from truelabel_db.legacy.encodings import (
    MS_MAX,
    MS_MIN,
    S_MAX,
    S_MIN,
    US_MAX,
    US_MIN,
    classify_timestamp,
)
from truelabel_db.legacy.schema import LegacyTable
from truelabel_db.schema.mapping import BY_LEGACY, ColumnMap
from truelabel_db.schema.transforms import (
    CommaList,
    Enum,
    Inet,
    Json,
    SingletonList,
    Unconvertible,
    decode_text,
)
from truelabel_db.sqlite_sql import quote_ident

_QUOTED = re.compile(r"'[^']*'")
STORAGE = ("integer", "real", "text", "blob", "null")
ENUM_LIKE_MAX = 20


def profile_table(conn: sqlite3.Connection, table: LegacyTable, rows: int,
                  sample_limit: int) -> list[ColumnReport]:
    mapped = BY_LEGACY.get(table.name)
    by_name = {c.legacy: c for c in mapped.columns} if mapped else {}
    reports = [ColumnReport(table.name, c.name, c.declared_type,
                            f"{mapped.target}.{by_name[c.name].target}" if c.name in by_name and mapped else None)
               for c in table.columns]
    _count_storage_and_encodings(conn, table, reports, by_name)
    for report in reports:
        column = by_name.get(report.column)
        if column is not None:
            _refusals(conn, table, column, report, sample_limit)
        if rows >= ENUM_LIKE_MAX or isinstance(getattr(column, "transform", None), Enum):
            _enum_like(conn, table, report, column)
    return reports


def _count_storage_and_encodings(conn: sqlite3.Connection, table: LegacyTable,
                                 reports: list[ColumnReport], by_name: dict[str, ColumnMap]) -> None:
    """One scan of the table: typeof() of every column, plus each column's encoding counts."""
    parts: list[tuple[ColumnReport, str, str]] = []
    for report in reports:
        q = quote_ident(report.column)
        for kind in STORAGE:
            parts.append((report, f"storage:{kind}", f"sum(typeof({q}) = '{kind}')"))
        parts.append((report, "enc:nul_byte", f"sum(typeof({q}) = 'text' AND instr(CAST({q} AS BLOB), x'00') > 0)"))
        if report.declared_type.upper() == "DATETIME":
            for name, low, high in (("epoch_ms", MS_MIN, MS_MAX), ("epoch_s", S_MIN, S_MAX),
                                    ("epoch_us", US_MIN, US_MAX)):
                parts.append((report, f"enc:{name}", f"sum(typeof({q}) = 'integer' AND {q} BETWEEN {low} AND {high})"))
        if report.declared_type.upper() == "BOOLEAN":
            parts.append((report, "enc:1/0", f"sum(typeof({q}) = 'integer' AND {q} IN (0, 1))"))
        transform = getattr(by_name.get(report.column), "transform", None)
        if isinstance(transform, Json):
            parts.append((report, "enc:json_parses", f"sum(typeof({q}) = 'text' AND json_valid({q}))"))
            parts.append((report, "enc:json_does_not_parse", f"sum(typeof({q}) = 'text' AND NOT json_valid({q}))"))
        if isinstance(transform, CommaList):
            parts.append((report, "enc:comma_list", f"sum(typeof({q}) = 'text' AND instr({q}, ',') > 0)"))
            parts.append((report, "enc:list_items_total",
                          f"sum(CASE WHEN typeof({q}) = 'text' AND {q} <> '' THEN length({q}) - length(replace({q}, ',', '')) + 1 END)"))
    if not parts:
        return
    row = conn.execute(f"SELECT {', '.join(p[2] for p in parts)} FROM {quote_ident(table.name)}").fetchone()
    for (report, key, _), value in zip(parts, row):
        kind, name = key.split(":", 1)
        target = report.storage if kind == "storage" else report.encodings
        if value:
            target[name] = int(value)
    for report in reports:
        if report.declared_type.upper() == "DATETIME" and report.storage.get("text"):
            _classify_text_timestamps(conn, table, report)


def _classify_text_timestamps(conn: sqlite3.Connection, table: LegacyTable, report: ColumnReport) -> None:
    q = quote_ident(report.column)
    counts: Counter[str] = Counter()
    for (value,) in conn.execute(f"SELECT {q} FROM {quote_ident(table.name)} WHERE typeof({q}) = 'text'"):
        counts[classify_timestamp(value)[0].value] += 1
    for name, n in counts.items():
        report.encodings[name] = report.encodings.get(name, 0) + n


def _suspects_query(table: LegacyTable, column: ColumnMap) -> str:
    """The rows whose value the copy's fast path would not vouch for."""
    q = quote_ident(column.legacy)
    key = quote_ident(table.primary_key)
    base = f"SELECT {key}, {q} FROM {quote_ident(table.name)}"
    check = column.transform.sqlite_check(q, True)
    exact_in_python = isinstance(column.transform, (Inet, CommaList, SingletonList))
    if check is None or exact_in_python:
        return base + ("" if column.not_null else f" WHERE {q} IS NOT NULL")
    null_ok = "" if column.not_null else f"{q} IS NULL OR "
    return base + f" WHERE NOT coalesce({null_ok}({check}), 0)"


def _refusals(conn: sqlite3.Connection, table: LegacyTable, column: ColumnMap,
              report: ColumnReport, sample_limit: int) -> None:
    conn.text_factory = decode_text
    try:
        for key, value in conn.execute(_suspects_query(table, column)):
            _judge(column, key, value, report, sample_limit)
    finally:
        conn.text_factory = str


def _judge(column: ColumnMap, key: Any, value: Any, report: ColumnReport, sample_limit: int) -> None:
    try:
        converted = column.convert(value)
    except Unconvertible as exc:
        reason = _QUOTED.sub("'…'", exc.reason)  # one line per kind of refusal, not per value
        report.refused[reason] = report.refused.get(reason, 0) + 1
        samples = report.refused_samples.setdefault(reason, [])
        if len(samples) < sample_limit:
            samples.append(str(key))
        return
    if converted.repair:
        note = _QUOTED.sub("'…'", converted.repair)
        report.repaired[note] = report.repaired.get(note, 0) + 1


def _enum_like(conn: sqlite3.Connection, table: LegacyTable, report: ColumnReport,
               column: ColumnMap | None) -> None:
    transform = getattr(column, "transform", None)
    is_enum = isinstance(transform, Enum)
    if not is_enum and (report.declared_type.upper() != "TEXT" or report.column == table.primary_key):
        return
    q = quote_ident(report.column)
    name = quote_ident(table.name)
    if not is_enum:  # a cheap look at the first rows rules most free-text columns out
        seen = conn.execute(f"SELECT count(DISTINCT {q}) FROM (SELECT {q} FROM {name} LIMIT 2000)").fetchone()[0]
        if seen > ENUM_LIKE_MAX:
            return
    rows = conn.execute(f"SELECT {q}, count(*) FROM {quote_ident(table.name)} WHERE {q} IS NOT NULL "
                        f"GROUP BY {q} ORDER BY 2 DESC LIMIT {ENUM_LIKE_MAX + 1}").fetchall()
    if not is_enum and len(rows) > ENUM_LIKE_MAX:
        return
    report.distinct_values = {str(v): int(n) for v, n in rows}
    if is_enum:
        for value in report.distinct_values:
            try:
                transform.convert(value)  # type: ignore[union-attr]
            except Unconvertible:
                report.outside_enum.append(value)
