"""``dr drill``: restore the latest backup next to production, validate it, report RTO and RPO."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from truelabel_db.cli.backup_cmd import KeyFileOption, RepoOption
from truelabel_db.cli.options import JsonOption, TargetOption
from truelabel_db.cli.output import emit_json, err

dr_app = typer.Typer(no_args_is_help=True, help="Disaster recovery.")


def register(app: typer.Typer) -> None:
    app.add_typer(dr_app, name="dr")


@dr_app.command("drill")
def drill(
    target: TargetOption = None,
    to: RepoOption = None,
    pitr_repo: Annotated[Optional[Path], typer.Option(envvar="TRUELABEL_PITR_REPO",
                                                      help="WAL archive, for the RPO.")] = None,
    key_file: KeyFileOption = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the restored database.")] = False,
    jobs: Annotated[int, typer.Option(min=1)] = 4,
    work_dir: Annotated[Optional[Path], typer.Option()] = None,
    json_out: JsonOption = False,
) -> None:
    """Validate the latest backup → restore it next to production → validate data → report."""
    from truelabel_db.backup import load_key, open_storage
    from truelabel_db.backup.notify import Notifier
    from truelabel_db.dr.drill import DrillFailed, run_drill
    from truelabel_db.pitr.repo import PitrRepo
    from truelabel_db.postgres import resolve_target

    key, storage = load_key(key_file), open_storage(to)
    notifier = Notifier.from_env(warn=lambda line: err.print(f"[yellow]warning:[/] {line}"))
    repo = PitrRepo(pitr_repo.resolve()) if pitr_repo else None
    try:
        report = run_drill(resolve_target(target), storage, key, pitr_repo=repo, keep=keep, jobs=jobs,
                           work_dir=work_dir, notifier=notifier, say=lambda line: None if json_out else err.print(line))
    except DrillFailed as exc:
        if json_out:
            emit_json(exc.report.to_dict())
        raise
    if json_out:
        emit_json(report.to_dict())
        return
    view = Table("step", "seconds", "result")
    for step in report.steps:
        view.add_row(step.name, f"{step.seconds:.2f}", step.detail)
    err.print(view)
    err.print(f"[green]drill passed[/]: RTO {report.rto_seconds:.2f} s, "
              f"RPO {report.rpo_seconds:.2f} s ({report.rpo_source})")
