"""``bench``: hot paths measured beside their references, printed side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from truelabel_db.cli.copy_cmd import TargetOption
from truelabel_db.cli.output import emit_json, err

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks against the reference tools.")


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")


@bench_app.command("copy")
def copy(
    scale: Annotated[float, typer.Option(help="Legacy database size (5 ≈ 1.8M rows).")] = 5.0,
    target: TargetOption = None,
    workers: Annotated[int, typer.Option()] = 4,
    work_dir: Annotated[Path, typer.Option(help="Where generated files are kept and reused.")] = Path(".bench"),
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Our copy vs pgloader vs PostgreSQL's own COPY on the same clean legacy file."""
    from truelabel_db.bench.copy_bench import run_copy_bench

    admin_url = target or "postgresql://postgres@127.0.0.1:5432/postgres"
    result = run_copy_bench(scale, admin_url, workers, work_dir)
    if json_out:
        emit_json(result.to_dict())
    doc = result.to_dict()
    err.print(f"legacy file {doc['legacy_path']}: {doc['legacy_rows']:,} rows, {doc['legacy_mb']} MB")
    view = Table("contender", "rows", "wall s", "rows/s", "MB/s", "peak MB", "note")
    for c in doc["contenders"]:
        peak = f"{c['peak_rss_mb']:.0f}" if c["peak_rss_mb"] else "-"
        view.add_row(c["name"], f"{c['rows']:,}", f"{c['seconds']:.2f}", f"{c['rows_per_second']:,}",
                     f"{c['mb_per_second']}", peak, c["note"])
    err.print(view)
    for name, value in doc["ratios"].items():
        err.print(f"{name.replace('_', ' ')}: {value}")
