"""``pitr setup | basebackup | restore | status``: WAL archiving and recovery to a moment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from truelabel_db.cli.options import JsonOption, TargetOption
from truelabel_db.cli.output import emit_json, err

pitr_app = typer.Typer(no_args_is_help=True, help="Point-in-time recovery: WAL archive, base backups, restore.")
PitrRepoOption = Annotated[Path, typer.Option("--repo", envvar="TRUELABEL_PITR_REPO", show_envvar=True,
                                              help="Local folder (or mount) the server archives its WAL into.")]


def register(app: typer.Typer) -> None:
    app.add_typer(pitr_app, name="pitr")


@pitr_app.command("setup")
def setup(
    repo: PitrRepoOption,
    target: TargetOption = None,
    archive_timeout: Annotated[str, typer.Option(help="Longest a quiet server waits to archive a segment.")] = "60s",
    json_out: JsonOption = False,
) -> None:
    """Configure WAL archiving into the repository (ALTER SYSTEM; some settings need a restart)."""
    from truelabel_db.pitr.setup import setup_archiving
    from truelabel_db.postgres import resolve_target

    result = setup_archiving(resolve_target(target), repo, archive_timeout=archive_timeout)
    if json_out:
        emit_json(result.to_dict())
    err.print(f"[green]archiving configured[/] into {result.repository} for cluster {result.system_identifier}")
    if result.restart_needed:
        err.print(f"[yellow]restart PostgreSQL[/] for {', '.join(result.restart_needed)} to take effect")


@pitr_app.command("basebackup")
def basebackup(repo: PitrRepoOption, target: TargetOption = None,
               json_out: JsonOption = False) -> None:
    """Take a verified pg_basebackup into the repository."""
    from truelabel_db.pitr.basebackup import take_basebackup
    from truelabel_db.pitr.repo import PitrRepo
    from truelabel_db.postgres import resolve_target

    info = take_basebackup(resolve_target(target), PitrRepo(repo.resolve()))
    if json_out:
        emit_json(info.to_dict())
    err.print(f"[green]base backup {info.id}[/]: {info.bytes / 1e6:,.1f} MB, verified, finished {info.finished_at}")


@pitr_app.command("restore")
def restore(
    repo: PitrRepoOption,
    target_time: Annotated[str, typer.Option(help="The moment, with its UTC offset: '2026-11-24 10:15:00+00'.")],
    data_dir: Annotated[Path, typer.Option(help="A new, empty data directory.")],
    json_out: JsonOption = False,
) -> None:
    """Build a data directory that recovers to the target time when started."""
    from truelabel_db.pitr.repo import PitrRepo
    from truelabel_db.pitr.restore import parse_target_time, restore_to_time

    plan = restore_to_time(PitrRepo(repo.resolve()), parse_target_time(target_time), data_dir.resolve())
    if json_out:
        emit_json(plan.to_dict())
    err.print(f"[green]data directory ready[/] at {plan.data_dir}: base backup {plan.base_backup.id}, "
              f"recovers to {plan.target_time.isoformat()} then promotes; "
              f"start it with pg_ctl -D {plan.data_dir} start")


@pitr_app.command("status")
def status(repo: Annotated[Optional[Path], typer.Option("--repo", envvar="TRUELABEL_PITR_REPO")] = None,
           target: TargetOption = None, json_out: JsonOption = False) -> None:
    """What the server says it archived (and failed to), and the repository's newest segment."""
    from truelabel_db.pitr.repo import PitrRepo
    from truelabel_db.pitr.setup import archive_status
    from truelabel_db.postgres import resolve_target

    doc = archive_status(resolve_target(target))
    if repo is not None:
        pitr = PitrRepo(repo.resolve())
        pitr.require_ready()
        newest = pitr.newest_wal()
        doc["repository_newest_wal"] = None if newest is None else {"name": newest[0], "archived_at": newest[1]}
        doc["base_backups"] = [b.id for b in pitr.base_backups()]
    if json_out:
        emit_json(doc)
        return
    for name, value in doc.items():
        err.print(f"{name}: {value}")
