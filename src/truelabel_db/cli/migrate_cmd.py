"""``migrate``: backup → schema → capture → copy → follow → verify → cutover, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from truelabel_db.cli.options import JsonOption, TargetOption
from truelabel_db.cli.output import emit_json, err


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate)


def migrate(
    source: Annotated[Path, typer.Option(help="Legacy SQLite file (the app may keep writing).")],
    target: TargetOption = None,
    redis: Annotated[str, typer.Option(envvar="TRUELABEL_REDIS_URL", help="Redis holding the gate.")] = "redis://127.0.0.1:6379/0",
    work_dir: Annotated[Path, typer.Option(help="Backups and snapshots.")] = Path(".truelabel/migrate"),
    workers: Annotated[int, typer.Option(min=1)] = 4,
    primary_file: Annotated[Optional[Path], typer.Option()] = None,
    switch_cmd: Annotated[Optional[str], typer.Option(help="Command (no shell) that points the app at PostgreSQL.")] = None,
    health_url: Annotated[Optional[str], typer.Option()] = None,
    json_out: JsonOption = False,
) -> None:
    """The whole migration with checkpoints; run it again after a failure to resume."""
    from truelabel_db.migrate import MigrateOptions
    from truelabel_db.migrate import migrate as run
    from truelabel_db.postgres import resolve_target

    options = MigrateOptions(redis_url=redis, work_dir=work_dir, workers=workers, primary_file=primary_file,
                             switch_cmd=switch_cmd, health_url=health_url)
    report = run(source, resolve_target(target), options, say=lambda line: err.print(line))
    if json_out:
        emit_json(report.to_dict())
    err.print(f"[green]migrated.[/] steps done: {', '.join(report.done) or 'none'}; "
              f"resumed past: {', '.join(report.skipped) or 'none'}")
