"""The short list a person reads first: each problem once, with its consequence."""

from __future__ import annotations

from truelabel_db.analyze.report import AnalysisReport, Finding


def summarise(report: AnalysisReport) -> list[Finding]:
    out: list[Finding] = []
    for c in report.columns:
        name = f"{c.table}.{c.column}"
        for reason, n in c.refused.items():
            out.append(Finding("error", f"{name}: {n:,} value(s) will be quarantined ({reason})"))
        for note, n in c.repaired.items():
            out.append(Finding("warning", f"{name}: {n:,} value(s) will be repaired ({note})"))
        if c.outside_enum:
            out.append(Finding("error", f"{name}: values outside the target enum: {', '.join(c.outside_enum)}"))
    for o in report.orphans:
        if o.rows:
            out.append(Finding("error", f"{o.table}.{o.column}: {o.rows:,} row(s) point to no {o.parent}"))
    for m in report.missing_indexes:
        out.append(Finding("warning", f"{m.table}({', '.join(m.columns)}) has no index: {m.why}"))
    if report.json_in_text:
        out.append(Finding("info", "JSON stored as text (becomes jsonb): " + ", ".join(report.json_in_text)))
    if report.lists_in_text:
        out.append(Finding("info", "lists stored as comma-separated text (become text[]): "
                           + ", ".join(report.lists_in_text)))
    enums = [f"{c.table}.{c.column}" for c in report.columns if c.distinct_values and c.target]
    if enums:
        out.append(Finding("info", "free-text columns holding enums (become PostgreSQL enums or checked text): "
                           + ", ".join(enums)))
    if report.unmapped:
        out.append(Finding("warning", "not in the mapping: " + ", ".join(report.unmapped) + " — copy and capture "
                           "refuse the file until you choose: --unmapped carry (columns kept in legacy_extra, "
                           "tables in the legacy schema) or --unmapped ignore:NAME,... (left out, on record)"))
    if report.required_missing:
        out.append(Finding("error", "required by the mapping but not in the file: " + ", ".join(report.required_missing)
                           + " — copy and capture refuse the file (an older app version? migrate its schema first)"))
    if report.missing:
        out.append(Finding("info", "in the mapping but not in the file: " + ", ".join(report.missing)
                           + " (an optional table, or a nullable column: read as absent or NULL)"))
    if report.journal_mode.lower() != "wal":
        out.append(Finding("info", f"journal mode is {report.journal_mode}: readers block writers; "
                           "the copy reads a snapshot taken with the online backup API"))
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(out, key=lambda f: order[f.severity])
