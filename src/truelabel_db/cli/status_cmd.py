"""``status``: where a migration stands, once or live (``--watch``)."""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from truelabel_db.cli.options import JsonOption, SourceOption, TargetOption, positive
from truelabel_db.cli.output import emit_json, err

if TYPE_CHECKING:
    from truelabel_db.status import MigrationStatus


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def status(
    source: SourceOption,
    target: TargetOption = None,
    redis: Annotated[Optional[str], typer.Option(envvar="TRUELABEL_REDIS_URL",
                                                 help="Redis holding the gate and the published primary.")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Redraw live until interrupted.")] = False,
    interval: Annotated[float, typer.Option(callback=positive, help="Seconds between refreshes with --watch.")] = 1.0,
    history: Annotated[int, typer.Option(min=1, help="Lag samples kept for the sparkline (--watch).")] = 120,
    frames: Annotated[Optional[int], typer.Option(hidden=True, help="Stop after this many refreshes.")] = None,
    lag_threshold_ms: Annotated[int, typer.Option(min=0, help="Alert above this follower lag.")] = 1000,
    json_out: JsonOption = False,
) -> None:
    """Copy progress per table, follower lag (a sparkline with --watch), changelog, last verify,
    quarantine, primary and gate, and the alerts an operator should act on."""
    from truelabel_db.postgres import resolve_target
    from truelabel_db.status import collect

    url = resolve_target(target)
    if not watch:
        current = collect(source, url, redis, lag_threshold_ms=lag_threshold_ms)
        if json_out:
            emit_json(current.to_dict())
        err.print(render(current, []))
        return
    lags: deque[float] = deque(maxlen=history)
    shown = 0
    with Live(console=err, refresh_per_second=4, transient=False) as live:
        try:
            while frames is None or shown < frames:
                current = collect(source, url, redis, lag_threshold_ms=lag_threshold_ms)
                lags.append(float((current.follower or {}).get("lag_ms") or 0))
                live.update(render(current, list(lags)))
                shown += 1
                if frames is None or shown < frames:
                    time.sleep(interval)
        except KeyboardInterrupt:
            pass


def render(current: MigrationStatus, lags: list[float]) -> Group:
    from truelabel_db.status import sparkline

    head = Table.grid(padding=(0, 2))
    head.add_row("legacy file", current.source)
    head.add_row("primary", f"[bold]{current.primary}[/] (catalog)" + (
        f", published: {current.published_primary}" if current.published_primary else ""))
    head.add_row("gate", f"[yellow]raised[/] by {current.gate}" if current.gate else "down")
    head.add_row("changelog", "capture not installed" if not current.capture_installed else
                 f"{current.changelog_pending:,} rows to apply, last seq {current.changelog_last_seq}")
    head.add_row("quarantine", f"{current.quarantined:,} open")
    parts: list[object] = [Panel(head, title="migration", title_align="left")]
    if current.copy_tables:
        copy = Table("table", "chunks", "rows read", title=f"copy run {current.copy_run} ({current.copy_status})",
                     title_justify="left")
        for t in current.copy_tables:
            copy.add_row(t["legacy_table"], f"{t['chunks_done']}/{t['chunks']}", f"{t['rows_read']:,}")
        parts.append(copy)
    if current.follower:
        f = current.follower
        follow = Table.grid(padding=(0, 2))
        follow.add_row("position", f"{f['position']:,} ({f['changes_applied']:,} changes applied)")
        follow.add_row("lag", f"{f['lag_ms']} ms / {f['lag_rows']} rows" + (f"  {sparkline(lags)}" if lags else ""))
        follow.add_row("last apply", f"{f['seconds_since_apply']:.0f} s ago")
        follow.add_row("verified up to", str(f.get("verified_position") or "—"))
        parts.append(Panel(follow, title="follower", title_align="left"))
    if current.alerts:
        parts.append(Panel("\n".join(f"• {a}" for a in current.alerts), title="[bold red]alerts[/]",
                           title_align="left", border_style="red"))
    return Group(*parts)  # type: ignore[arg-type]
