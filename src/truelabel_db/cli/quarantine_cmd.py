"""``quarantine list | fix | redrive``: the rows that could not be written, and their second chance."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.table import Table

from truelabel_db.cli.options import JsonOption, TargetOption
from truelabel_db.cli.output import emit_json, err
from truelabel_db.errors import ConfigError

quarantine_app = typer.Typer(no_args_is_help=True, help="Rows that could not be written, with why.")


def register(app: typer.Typer) -> None:
    app.add_typer(quarantine_app, name="quarantine")


@quarantine_app.command("list")
def list_(
    target: TargetOption = None,
    table: Annotated[Optional[str], typer.Option(help="Only this legacy table.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include resolved rows.")] = False,
    limit: Annotated[int, typer.Option(min=1)] = 100,
    json_out: JsonOption = False,
) -> None:
    """List quarantined rows with their reasons."""
    from truelabel_db.postgres import connect, resolve_target
    from truelabel_db.quarantine import list_records

    with connect(resolve_target(target)) as conn:
        records = list_records(conn, table=table, include_resolved=all_, limit=limit)
    if json_out:
        emit_json([r.to_dict() for r in records])
        return
    view = Table("id", "table", "key", "stage", "reasons", "resolved")
    for r in records:
        reasons = "; ".join(f"{x['column']}: {x['reason']}" for x in r.reasons)
        view.add_row(str(r.id), r.legacy_table, r.legacy_key or "", r.stage, reasons, r.resolution or "")
    err.print(view)
    err.print(f"{len(records)} row(s)")


@quarantine_app.command("fix")
def fix(
    record_id: Annotated[int, typer.Argument(min=1, help="Quarantine id (see list).")],
    assignment: Annotated[str, typer.Argument(help="COLUMN=JSON_VALUE, e.g. status='\"PENDING\"' or fileSize=1024")],
    target: TargetOption = None,
) -> None:
    """Correct one original value of a quarantined row (then re-drive it)."""
    from truelabel_db.postgres import connect, resolve_target
    from truelabel_db.quarantine import fix_value

    column, sep, raw = assignment.partition("=")
    if not sep:
        raise ConfigError("expected COLUMN=VALUE")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    with connect(resolve_target(target), autocommit=True, migration_writer=True) as conn:
        try:
            fix_value(conn, record_id, column, value)
        except KeyError as exc:
            raise ConfigError(f"no quarantined row {record_id} with column {column}") from exc
    err.print(f"row {record_id}: {column} set")


@quarantine_app.command("redrive")
def redrive(
    target: TargetOption = None,
    table: Annotated[Optional[str], typer.Option(help="Only this legacy table.")] = None,
    ids: Annotated[Optional[list[int]], typer.Option("--id", help="Only these ids.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Convert and insert quarantined rows again; those still failing stay, with the new reason."""
    from truelabel_db.postgres import connect, resolve_target
    from truelabel_db.quarantine import redrive as run

    with connect(resolve_target(target), autocommit=True, migration_writer=True) as conn:
        result = run(conn, table=table, ids=ids or ())
    if json_out:
        emit_json(result.to_dict())
        return
    err.print(f"re-driven: {len(result.inserted)}, still failing: {len(result.still_failing)}")
    for record_id, reason in list(result.still_failing.items())[:20]:
        err.print(f"  {record_id}: {reason}")
