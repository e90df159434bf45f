"""The options several commands share, declared once so that they read the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

TargetOption = Annotated[Optional[str], typer.Option(
    envvar="TRUELABEL_TARGET_URL", show_envvar=True,
    help="PostgreSQL URL (prefer the environment variable: it keeps passwords off the command line).")]

SourceOption = Annotated[Path, typer.Option(help="Legacy SQLite file.")]

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]

GateRedisOption = Annotated[str, typer.Option(
    envvar="TRUELABEL_REDIS_URL", help="Redis holding the gate and the published primary.")]

# The benches flush their Redis database: one of its own, apart from the tests' (12-15, one per
# pytest-xdist worker), the soak's (11) and the gate's usual 0.
BENCH_REDIS_URL = "redis://127.0.0.1:6379/10"
BenchRedisOption = Annotated[str, typer.Option("--redis", help="Redis for the service's cache (flushed!).")]

UnmappedOption = Annotated[Optional[list[str]], typer.Option(
    "--unmapped", metavar="refuse|carry|ignore:TABLE[.COLUMN],...",
    help="Tables and columns of the legacy file the mapping does not know: refuse them (default), carry "
         "them (columns into a per-table legacy_extra jsonb, tables into the `legacy` schema, followed, "
         "verified and rolled back like the rest), or ignore the named ones, on record. Repeatable.")]


def positive(value: float | None) -> float | None:
    """An option's callback: a size or a duration must be more than 0 (or not given at all).

    Counts use ``min=1`` and shares ``min=0, max=1``; a float "more than 0" has no such bound in
    Typer, hence this. A value out of bounds is a one-line usage error, before anything runs."""
    if value is not None and value <= 0:
        raise typer.BadParameter(f"{value:g} is not more than 0")
    return value
