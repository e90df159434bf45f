"""``follow``: keep PostgreSQL equal to the legacy file while the app writes."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated, Optional

import typer

from truelabel_db.cli.options import JsonOption, TargetOption
from truelabel_db.cli.output import emit_json, err


def register(app: typer.Typer) -> None:
    app.command("follow")(follow)


def follow(
    source: Annotated[Path, typer.Option(help="Legacy SQLite file with capture installed.")],
    target: TargetOption = None,
    lag_threshold_ms: Annotated[int, typer.Option(min=0, help="Alert above this lag (plan: 1000 ms).")] = 1000,
    on_lag: Annotated[Optional[str], typer.Option(help="Command (no shell) or http(s) URL to call once per lag episode.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Changelog rows per applied transaction.")] = 5000,
    once: Annotated[bool, typer.Option("--once", help="Stop when caught up.")] = False,
    max_seconds: Annotated[Optional[float], typer.Option(help="Stop after this long.")] = None,
    verify_every: Annotated[Optional[float], typer.Option(help="Verify (and resync what differs) every N seconds when caught up.")] = None,
    metrics_port: Annotated[Optional[int], typer.Option(help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Apply the changelog to PostgreSQL continuously, exactly once, reporting lag."""
    from truelabel_db.follow import Follower, FollowOptions
    from truelabel_db.follow.metrics import serve
    from truelabel_db.postgres import resolve_target
    from truelabel_db.verify import resync_check

    url = resolve_target(target)
    follower = Follower(source, url,
                        FollowOptions(batch_size=batch_size, lag_threshold_ms=lag_threshold_ms, on_lag=on_lag,
                                      verify_every=verify_every),
                        integrity_check=resync_check(source, url) if verify_every is not None else None)
    signal.signal(signal.SIGTERM, lambda *_: follower.stop())
    server = serve(metrics_port, lambda: follower.stats) if metrics_port else None
    try:
        stats = follower.run(until_caught_up=once, max_seconds=max_seconds)
    except KeyboardInterrupt:
        stats = follower.stats
    finally:
        follower.close()
        if server:
            server.close()
    if json_out:
        emit_json(stats.to_dict())
    err.print(f"followed to position {stats.position}: {stats.changes_applied:,} changes in "
              f"{stats.batches} batches, lag {stats.lag_ms} ms / {stats.lag_rows} rows, "
              f"{stats.alerts} lag alert(s)")
