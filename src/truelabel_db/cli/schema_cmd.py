"""``schema apply`` and ``mapping``: the target schema and the declared mapping."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from truelabel_db.cli.options import JsonOption, TargetOption
from truelabel_db.cli.output import emit_json, err

schema_app = typer.Typer(no_args_is_help=True, help="The optimized PostgreSQL schema.")


def register(app: typer.Typer) -> None:
    app.add_typer(schema_app, name="schema")
    app.command("mapping")(mapping)


@schema_app.command("apply")
def apply(
    target: TargetOption = None,
    sql_only: Annotated[bool, typer.Option("--sql", help="Print the SQL it would run, run nothing.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Install the optimized schema (idempotent); missing extensions are reported, not fatal."""
    from truelabel_db.postgres import connect, resolve_target
    from truelabel_db.schema.ddl import apply_schema, plan_sql

    if sql_only:
        typer.echo(plan_sql())
        return
    with connect(resolve_target(target), autocommit=True) as conn:
        report = apply_schema(conn)
    if json_out:
        emit_json(report.to_dict())
        return
    err.print("applied: " + ", ".join(report.applied))
    missing = [name for name, ok in report.extensions.items() if not ok]
    if missing:
        err.print("[yellow]left out[/]: " + "; ".join(f"{k} ({v})" for k, v in report.skipped.items()))
    else:
        err.print("extensions: " + ", ".join(report.extensions))


def mapping(json_out: JsonOption = False) -> None:
    """Print the declared legacy → target mapping, one row per column."""
    from truelabel_db.schema.mapping import mapping_rows

    rows = mapping_rows()
    if json_out:
        keys = ("legacy", "target", "type", "rule", "path")
        emit_json([dict(zip(keys, r)) for r in rows])
        return
    table = Table("legacy column", "target column", "type", "transform", "copy path")
    for row in rows:
        table.add_row(*row)
    err.print(table)


@schema_app.command("roles")
def roles(
    target: TargetOption = None,
    app_role: Annotated[str, typer.Option(help="The app's group role (NOLOGIN).")] = "truelabel_app",
    readonly_role: Annotated[str, typer.Option(help="The read-only group role (NOLOGIN).")] = "truelabel_readonly",
    login: Annotated[str | None, typer.Option(help="Also create this LOGIN role, a member of the app role; "
                                                   "its password from $TRUELABEL_APP_PASSWORD.")] = None,
) -> None:
    """Create the least-privilege roles the app and readers run as, and grant them."""
    import os

    from truelabel_db.postgres import connect, resolve_target
    from truelabel_db.schema.roles import ensure_roles

    with connect(resolve_target(target), autocommit=True) as conn:
        report = ensure_roles(conn, app_role, readonly_role, login, os.environ.get("TRUELABEL_APP_PASSWORD"))
    err.print(f"roles created: {', '.join(report.created) or 'none (all existed)'}; "
              f"{len(report.granted)} grants applied")
