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

UnmappedOption = Annotated[Optional[list[str]], typer.Option(
    "--unmapped", metavar="refuse|carry|ignore:TABLE[.COLUMN],...",
    help="Tables and columns of the legacy file the mapping does not know: refuse them (default), carry "
         "them (columns into a per-table legacy_extra jsonb, tables into the `legacy` schema, followed, "
         "verified and rolled back like the rest), or ignore the named ones, on record. Repeatable.")]
