"""``copy``: the initial copy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from truelabel_db.cli.options import JsonOption, TargetOption, UnmappedOption
from truelabel_db.cli.output import emit_json, err


def register(app: typer.Typer) -> None:
    app.command("copy")(copy)


def copy(
    source: Annotated[Path, typer.Option(help="Legacy SQLite file (read through a snapshot).")],
    target: TargetOption = None,
    workers: Annotated[int, typer.Option(min=1, help="Parallel workers (tables and key ranges).")] = 4,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per chunk (one COPY and one transaction).")] = 10_000,
    truncate: Annotated[bool, typer.Option("--truncate", help="Empty the application tables of a non-empty target first.")] = False,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Continue an unfinished copy from its snapshot.")] = True,
    orphans: Annotated[str, typer.Option(help="Rows whose foreign key points nowhere: quarantine | keep. Also "
                                         "applies to orphans made after the copy, which the follower meets.")] = "quarantine",
    unmapped: UnmappedOption = None,
    work_dir: Annotated[Path, typer.Option(help="Where the snapshot is kept while the copy runs.")] = Path(".truelabel"),
    keep_snapshot: Annotated[bool, typer.Option("--keep-snapshot", help="Keep the snapshot file afterwards.")] = False,
    in_place: Annotated[bool, typer.Option("--in-place", help="Read the file itself under a shared lock instead of a snapshot: no copy of the file, but the app's writes wait until the copy ends (offline migrations).")] = False,
    json_out: JsonOption = False,
) -> None:
    """Copy every legacy row into the optimized schema; quarantine what cannot be converted."""
    from truelabel_db.copy import CopyOptions, run_copy
    from truelabel_db.copy.summary import render
    from truelabel_db.postgres import resolve_target
    from truelabel_db.progress import RichProgress
    from truelabel_db.schema.drift import UnmappedPolicy

    options = CopyOptions(workers=workers, batch_size=batch_size, work_dir=work_dir,
                          truncate=truncate, resume=resume, orphan_policy=orphans,
                          keep_snapshot=keep_snapshot, in_place=in_place,
                          unmapped=UnmappedPolicy.parse(unmapped) if unmapped else None)
    result = run_copy(source, resolve_target(target), options, RichProgress(err))
    render(result, err)
    if json_out:
        emit_json(result.to_dict())
