"""The analysis for people: a few Rich tables, findings first."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from truelabel_db.analyze.report import AnalysisReport

COLORS = {"error": "red", "warning": "yellow", "info": "cyan"}


def render(report: AnalysisReport, console: Console) -> None:
    console.print(f"[bold]{report.path}[/] — {report.size_bytes / 1e6:,.1f} MB, journal mode {report.journal_mode}")
    findings = Table("severity", "finding", title="Findings", title_justify="left")
    for f in report.findings:
        findings.add_row(f"[{COLORS.get(f.severity, 'white')}]{f.severity}[/]", f.message)
    console.print(findings)
    tables = Table("table", "rows", "bytes", "columns", "target", title="Tables", title_justify="left")
    for t in report.tables:
        tables.add_row(t.name, f"{t.rows:,}", f"{t.bytes:,}" if t.bytes is not None else "?",
                       str(t.columns), t.target or "[yellow]unmapped[/]")
    console.print(tables)
    encodings = Table("column", "stored as", "encodings", "repaired", "refused",
                      title="Columns with something to say", title_justify="left")
    for c in report.columns:
        interesting = c.repaired or c.refused or c.outside_enum or len(c.storage) > 2 or any(
            k not in ("epoch_ms", "1/0", "json_parses") for k in c.encodings)
        if not interesting:
            continue
        encodings.add_row(f"{c.table}.{c.column}", _pairs(c.storage), _pairs(c.encodings),
                          _pairs(c.repaired), _pairs(c.refused))
    console.print(encodings)
    enums = Table("column", "values", "outside the target enum", title="Enum-like columns", title_justify="left")
    for c in report.columns:
        if c.distinct_values:
            enums.add_row(f"{c.table}.{c.column}", _pairs(c.distinct_values), ", ".join(c.outside_enum))
    console.print(enums)
    shapes = Table("hot path", "today", "queries", "fix", title="N+1 and unindexed shapes", title_justify="left")
    for s in report.query_shapes:
        shapes.add_row(s.name, s.shape, f"{s.queries:,}", s.fix)
    console.print(shapes)


def _pairs(values: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in values.items())
