"""``analyze``: what is wrong with a legacy SQLite file, before anything is migrated (plan §1)."""

from __future__ import annotations

from pathlib import Path

from truelabel_db.analyze.columns import profile_table
from truelabel_db.analyze.findings import summarise
from truelabel_db.analyze.relations import missing_indexes, orphans, query_shapes
from truelabel_db.analyze.render import render
from truelabel_db.analyze.report import AnalysisReport, TableReport
from truelabel_db.capture.changelog import TRIGGER_PREFIX as TOOL_TABLE_PREFIX
from truelabel_db.errors import SourceError
from truelabel_db.legacy.schema import read_schema
from truelabel_db.legacy.source import reading
from truelabel_db.schema.drift import OPTIONAL_TABLES, detect, required_absent
from truelabel_db.schema.mapping import BY_LEGACY
from truelabel_db.schema.transforms import CommaList, Json
from truelabel_db.sqlite_sql import quote_ident

__all__ = ["AnalysisReport", "analyze", "render"]


def analyze(path: Path, *, sample_limit: int = 5) -> AnalysisReport:
    """Read-only: profile every table and column, find orphans and missing indexes."""
    with reading(path) as conn:
        schema = {name: table for name, table in read_schema(conn).items()
                  if not name.startswith(TOOL_TABLE_PREFIX)}  # our own changelog is not legacy data
        report = AnalysisReport(str(path), path.stat().st_size,
                                conn.execute("PRAGMA journal_mode").fetchone()[0])
        sizes = _table_bytes(conn)
        rows = {name: int(conn.execute(f"SELECT count(*) FROM {quote_ident(name)}").fetchone()[0])
                for name in schema}
        for name, table in schema.items():
            mapped = BY_LEGACY.get(name)
            report.tables.append(TableReport(name, rows[name], sizes.get(name), len(table.columns),
                                             mapped.target if mapped else None))
            if mapped is None:
                report.unmapped.append(name)
            else:
                known = {c.legacy for c in mapped.columns}
                report.unmapped += [f"{name}.{c.name}" for c in table.columns if c.name not in known]
                report.json_in_text += [f"{name}.{c.legacy}" for c in mapped.columns if isinstance(c.transform, Json)]
                report.lists_in_text += [f"{name}.{c.legacy}" for c in mapped.columns
                                         if isinstance(c.transform, CommaList)]
            report.columns += profile_table(conn, table, rows[name], sample_limit)
        drift = detect(schema)
        tables, columns = required_absent(drift)
        if len(tables) == len(BY_LEGACY) - len(OPTIONAL_TABLES):
            raise SourceError(f"{path} is not a True Label database: none of its tables is one of the app's "
                              f"({', '.join(tables)})")
        report.required_missing = tables + [f"{t}.{c}" for t, cols in columns.items() for c in cols]
        report.missing = [f"{t}.{c}" for t, cols in drift.missing_columns.items() for c in cols
                          if f"{t}.{c}" not in report.required_missing]
        report.missing += [t for t in drift.missing_tables if t not in tables]
        report.orphans = orphans(conn, schema, sample_limit)
        report.missing_indexes = missing_indexes(schema)
        report.query_shapes = query_shapes(rows)
    report.findings = summarise(report)
    return report


def _table_bytes(conn) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Bytes per table, its indexes included, when this SQLite has the dbstat table."""
    try:
        pages = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
        owners = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')"))
    except Exception:  # noqa: BLE001 - dbstat is a compile-time option; without it, bytes are unknown
        return {}
    out: dict[str, int] = {}
    for name, size in pages:
        owner = owners.get(name, name)
        out[owner] = out.get(owner, 0) + int(size)
    return out
