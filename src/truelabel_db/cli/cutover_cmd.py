"""``cutover``: the last phase alone, once ``follow`` has caught up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from truelabel_db.cli.options import JsonOption, TargetOption
from truelabel_db.cli.output import emit_json, err

fence_app = typer.Typer(no_args_is_help=True, help="The fence: triggers that refuse writes to the old primary.")


def register(app: typer.Typer) -> None:
    app.command("cutover")(cutover)
    app.command("rollback")(rollback)
    app.add_typer(fence_app, name="fence")


def rollback(
    source: Annotated[Path, typer.Option(help="The legacy SQLite file to make the primary again.")],
    target: TargetOption = None,
    redis: Annotated[str, typer.Option(envvar="TRUELABEL_REDIS_URL", help="Redis holding the gate.")] = "redis://127.0.0.1:6379/0",
    primary_file: Annotated[Optional[Path], typer.Option(help="Also publish the primary in this JSON file.")] = None,
    json_out: JsonOption = False,
) -> None:
    """After cutover: replay PostgreSQL's writes into SQLite, lift the fence, switch back."""
    from truelabel_db.cutover.reverse import rollback as run
    from truelabel_db.postgres import resolve_target

    report = run(source, resolve_target(target), redis, primary_file, say=lambda line: err.print(line))
    if json_out:
        emit_json(report.to_dict())
    err.print(f"[green]SQLite is the primary again.[/] {report.replayed} rows replayed; "
              f"write pause {report.write_pause_ms:.0f} ms")


@fence_app.command("install")
def fence_install(source: Annotated[Path, typer.Option(help="Legacy SQLite file.")]) -> None:
    """Refuse every write to the legacy file (done by cutover; by hand only to recover)."""
    from truelabel_db.cutover.fence import install_fence

    install_fence(source)
    err.print(f"fence installed: writes to {source} now fail")


@fence_app.command("remove")
def fence_remove(source: Annotated[Path, typer.Option(help="Legacy SQLite file.")],
                 target: TargetOption = None) -> None:
    """Let writes into the legacy file again (after an interrupted cutover); refused while
    PostgreSQL is the recorded primary."""
    from truelabel_db.cutover.fence import remove_fence_unless_switched
    from truelabel_db.postgres import resolve_target

    remove_fence_unless_switched(source, resolve_target(target))
    err.print(f"fence removed: {source} accepts writes")


@fence_app.command("status")
def fence_status(source: Annotated[Path, typer.Option(help="Legacy SQLite file.")]) -> None:
    """Is the fence up?"""
    from truelabel_db.cutover.fence import fence_installed

    err.print("fence installed" if fence_installed(source) else "no fence")


def cutover(
    source: Annotated[Path, typer.Option(help="Legacy SQLite file (capture installed, followed).")],
    target: TargetOption = None,
    redis: Annotated[str, typer.Option(envvar="TRUELABEL_REDIS_URL", help="Redis holding the gate.")] = "redis://127.0.0.1:6379/0",
    primary_file: Annotated[Optional[Path], typer.Option(help="Also publish the primary in this JSON file.")] = None,
    switch_cmd: Annotated[Optional[str], typer.Option(help="Command (no shell) that points the app at PostgreSQL.")] = None,
    health_url: Annotated[Optional[str], typer.Option(help="Polled after the switch until it answers 200.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Gate, lock, marker, drain, verify, fence, switch, ungate: the write pause in milliseconds."""
    from truelabel_db.cutover.run import CutoverOptions
    from truelabel_db.cutover.run import cutover as run
    from truelabel_db.postgres import resolve_target

    options = CutoverOptions(redis_url=redis, primary_file=primary_file, switch_cmd=switch_cmd,
                             health_url=health_url)
    report = run(source, resolve_target(target), options, say=lambda line: err.print(line))
    if json_out:
        emit_json(report.to_dict())
    err.print(f"[green]PostgreSQL is the primary.[/] write pause {report.write_pause_ms:.0f} ms; "
              f"{report.verified_rows} changed rows verified, {report.resynced_rows} resynced")
