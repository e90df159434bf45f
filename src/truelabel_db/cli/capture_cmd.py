"""``capture install | status | remove``: change capture in the legacy file."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from truelabel_db.cli.options import JsonOption, SourceOption, UnmappedOption
from truelabel_db.cli.output import emit_json, err

capture_app = typer.Typer(no_args_is_help=True, help="Change capture: triggers into a changelog in the SQLite file.")


def register(app: typer.Typer) -> None:
    app.add_typer(capture_app, name="capture")


@capture_app.command("install")
def install(
    source: SourceOption,
    sql_only: Annotated[bool, typer.Option("--sql", help="Print the statements, change nothing.")] = False,
    unmapped: UnmappedOption = None,
) -> None:
    """Install the changelog and its triggers (safe while the app writes; idempotent)."""
    from truelabel_db.capture.changelog import capture_ddl, install_capture
    from truelabel_db.schema.drift import UnmappedPolicy

    if sql_only:
        typer.echo(";\n".join(capture_ddl()) + ";")
        return
    status = install_capture(source, UnmappedPolicy.parse(unmapped) if unmapped else None)
    err.print(f"capture installed in {source}: {status.triggers} triggers, "
              f"changelog at position {status.last_seq or 0}")


@capture_app.command("status")
def status(
    source: SourceOption,
    target: Annotated[Optional[str], typer.Option(envvar="TRUELABEL_TARGET_URL",
                                                  help="Also show the follower's figures from this target.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Is capture installed, how far the changelog goes, the follower's lag, schema changes."""
    from truelabel_db.capture.changelog import capture_status
    from truelabel_db.follow.state import follower_figures

    current = capture_status(source)
    follower = follower_figures(target, source) if target else None
    if json_out:
        emit_json({**current.to_dict(), "follower": follower})
        return
    if follower:
        err.print(f"follower: position {follower['position']}, lag {follower['lag_ms']} ms / "
                  f"{follower['lag_rows']} rows, {follower['rows_per_second']} rows/s, "
                  f"{follower['changes_applied']:,} changes applied, last {follower['seconds_since_apply']} s ago")
    if not current.installed:
        err.print(f"capture is not installed in {source}")
        return
    err.print(f"capture installed: {current.triggers}/{current.expected_triggers} triggers, "
              f"{current.pending_rows:,} changelog rows (seq {current.first_seq}..{current.last_seq}), "
              f"journal mode {current.journal_mode}")
    if current.schema_changed:
        err.print("[bold red]the legacy schema changed since capture was installed[/]: "
                  "re-install capture and copy again")


@capture_app.command("remove")
def remove(
    source: SourceOption,
    keep_changelog: Annotated[bool, typer.Option("--keep-changelog", help="Drop the triggers only.")] = False,
) -> None:
    """Remove the triggers (and the changelog unless --keep-changelog)."""
    from truelabel_db.capture.changelog import remove_capture

    remove_capture(source, keep_changelog=keep_changelog)
    err.print(f"capture removed from {source}")
