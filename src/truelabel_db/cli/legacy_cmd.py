"""``generate``, ``analyze`` and ``demo``: commands about the legacy side and the whole tour."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from truelabel_db.cli.options import JsonOption, positive
from truelabel_db.cli.output import emit_json, err


def register(app: typer.Typer) -> None:
    app.command()(generate)
    app.command()(analyze)
    app.command()(demo)


def generate(
    path: Annotated[Path, typer.Argument(help="Legacy SQLite file to create.")],
    scale: Annotated[float, typer.Option(
        callback=positive, help="1 ≈ 365k rows (1k users, 10k products, 200k scans).")] = 1.0,
    dirty: Annotated[bool, typer.Option("--dirty", help="Inject every kind of legacy dirt at a small known rate.")] = False,
    seed: Annotated[int, typer.Option(help="Same seed, same data.")] = 7,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Write a realistic legacy True Label database (Prisma's encodings, Portuguese text)."""
    from truelabel_db.legacy.generator import generate as run

    report = run(path, scale, dirty=dirty, seed=seed, overwrite=overwrite)
    if json_out:
        emit_json(report.to_dict())
        return
    total = sum(report.rows.values())
    err.print(f"wrote {path}: {total:,} rows in {report.seconds:.1f}s "
              f"({total / max(report.seconds, 1e-9):,.0f} rows/s)"
              + (f", {len(report.dirt)} dirty values" if dirty else ""))


def analyze(
    path: Annotated[Path, typer.Argument(help="Legacy SQLite file to inspect (opened read-only).")],
    json_out: JsonOption = False,
) -> None:
    """Report the legacy file's problems: encodings, JSON in text, enums, orphans, missing indexes."""
    from truelabel_db.analyze import analyze as run
    from truelabel_db.analyze import render

    report = run(path)
    if json_out:
        emit_json(report.to_dict())
    else:
        render(report, err)


def demo(
    scale: Annotated[float, typer.Option(callback=positive, help="Size of the generated legacy database.")] = 0.2,
    dirty: Annotated[bool, typer.Option("--dirty/--clean", help="Include legacy dirt (quarantined or repaired).")] = True,
    target: Annotated[Optional[str], typer.Option(envvar="TRUELABEL_TARGET_URL", show_envvar=True,
                                                  help="PostgreSQL URL; default: a private cluster the demo starts and stops.")] = None,
    work_dir: Annotated[Path, typer.Option(help="Where the demo keeps its files.")] = Path(".truelabel/demo"),
    workers: Annotated[int, typer.Option(min=1, help="Parallel copy workers.")] = 2,
) -> None:
    """Generate a legacy database, analyze it, migrate it end to end and print the summary."""
    from truelabel_db.demo import run_demo

    run_demo(work_dir=work_dir, scale=scale, dirty=dirty, target_url=target, workers=workers,
             console=err)
