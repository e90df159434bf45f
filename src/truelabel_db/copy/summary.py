"""The copy's final per-table summary, for people."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from truelabel_db.copy.runner import CopyResult


def render(result: CopyResult, console: Console) -> None:
    table = Table(title=f"copy run {result.run_id}" + (" (resumed)" if result.resumed else ""),
                  title_justify="left")
    for name in ("legacy table", "read", "written", "quarantined", "repaired", "reconciled"):
        table.add_column(name, justify="left" if name == "legacy table" else "right")
    for name, s in [*result.tables.items(), ("total", result.totals)]:
        mark = "[green]yes[/]" if s.reconciled else "[bold red]NO[/]"
        table.add_row(name, f"{s.read:,}", f"{s.written:,}", f"{s.quarantined:,}",
                      f"{s.repaired:,}", mark, end_section=name == list(result.tables)[-1])
    console.print(table)
    totals = result.totals
    verdict = ("every source row is in PostgreSQL or in quarantine: "
               f"{totals.read:,} read = {totals.written:,} written + {totals.quarantined:,} quarantined")
    console.print(("[green]reconciled:[/] " if result.reconciled else "[red]NOT reconciled:[/] ") + verdict)
    for line in result.mapping.summary():  # drift: what was carried, ignored on record, read as NULL
        console.print(f"[yellow]schema drift:[/] {line}")
    if totals.kept_orphans:
        console.print(f"{totals.kept_orphans:,} orphan rows kept under NOT VALID foreign keys")
    console.print(f"{totals.read:,} rows in {result.seconds:.2f}s ({result.rows_per_second:,.0f} rows/s); "
                  "steps: " + ", ".join(f"{k} {v:.2f}s" for k, v in result.steps.items()))
    if result.skipped:
        console.print("left out (missing extensions): " + ", ".join(result.skipped))
    if totals.quarantined:
        console.print("see the quarantined rows with: truelabel-db quarantine list")
