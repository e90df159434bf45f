"""``verify``: is PostgreSQL equal to SQLite, row for row? ``--repair`` re-copies what is not."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from truelabel_db.cli.options import JsonOption, TargetOption
from truelabel_db.cli.output import emit_json, err
from truelabel_db.errors import ReconciliationError


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)


def verify(
    source: Annotated[Path, typer.Option(help="Legacy SQLite file.")],
    target: TargetOption = None,
    repair: Annotated[bool, typer.Option("--repair", help="Re-copy exactly the rows that differ, then check again.")] = False,
    table: Annotated[Optional[list[str]], typer.Option(help="Only these legacy tables.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Counts and checksums of canonical rows on both sides, narrowed to the rows that differ."""
    from truelabel_db.postgres import resolve_target
    from truelabel_db.verify.compare import verify as run

    report = run(source, resolve_target(target), repair=repair, tables=table)
    if json_out:
        emit_json(report.to_dict())
    view = Table("legacy table", "sqlite rows", "postgres rows", "quarantined", "missing", "extra",
                 "different", "repaired", "equal")
    for name, v in report.tables.items():
        view.add_row(name, f"{v.source_rows:,}", f"{v.target_rows:,}", f"{v.quarantined:,}",
                     str(len(v.missing_in_target)), str(len(v.extra_in_target)), str(len(v.different)),
                     str(v.repaired), "[green]yes[/]" if v.equal else "[bold red]NO[/]")
    err.print(view)
    for name, v in report.tables.items():
        for label, keys in (("missing", v.missing_in_target), ("extra", v.extra_in_target),
                            ("different", v.different)):
            if keys:
                err.print(f"{name} {label}: {', '.join(keys[:10])}{' …' if len(keys) > 10 else ''}")
    if not report.equal:
        raise ReconciliationError("PostgreSQL differs from SQLite" + ("" if repair else "; run with --repair"))
    err.print("[green]PostgreSQL equals SQLite[/], quarantined rows accounted for")
