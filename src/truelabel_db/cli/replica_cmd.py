"""``replica``: add a streaming replica here, and see which replicas reads may go to."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from truelabel_db.cli.options import JsonOption, TargetOption
from truelabel_db.cli.output import emit_json, err

replica_app = typer.Typer(no_args_is_help=True, help="Streaming replicas of the primary.")


def register(app: typer.Typer) -> None:
    app.add_typer(replica_app, name="replica")


@replica_app.command("add")
def add(
    data_dir: Annotated[Path, typer.Option(help="Empty folder for the replica (its data/, log and socket).")],
    target: TargetOption = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port the replica listens on.")] = 5433,
    name: Annotated[str | None, typer.Option(help="Name the primary lists it under.")] = None,
    slot: Annotated[str | None, typer.Option(help="Create and use this physical replication slot.")] = None,
    listen: Annotated[str, typer.Option(help="listen_addresses of the replica.")] = "127.0.0.1",
    json_out: JsonOption = False,
) -> None:
    """Base-backup the primary (--target) with pg_basebackup -R and start it as a streaming replica."""
    from truelabel_db.postgres import resolve_target
    from truelabel_db.replicas.add import add_replica

    replica = add_replica(resolve_target(target), data_dir, port, name=name, slot=slot, listen=listen)
    if json_out:
        emit_json(replica.to_dict())
        return
    state = "streaming" if replica.streaming else "[yellow]started, not streaming yet[/]"
    err.print(f"replica {replica.name} on port {replica.port}: {state}; reads at {replica.url}")


@replica_app.command("status")
def status(
    replicas: Annotated[list[str], typer.Option("--replica", help="A replica URL (repeat for several).")],
    target: TargetOption = None,
    max_lag: Annotated[float, typer.Option(
        min=0, help="Seconds of lag a replica may have and still serve reads.")] = 60.0,
    json_out: JsonOption = False,
) -> None:
    """Each replica's lag against the primary and whether reads would be routed to it."""
    from truelabel_db.postgres import describe, resolve_target
    from truelabel_db.replicas.router import ReadRouter

    router = ReadRouter(resolve_target(target), replicas, max_lag_seconds=max_lag)
    states = router.states(refresh=True)
    if json_out:
        emit_json({"reads_go_to": describe(router.read_url()), "replicas": [s.to_dict() for s in states]})
        return
    view = Table("replica", "lag s", "serves reads", "why")
    for s in states:
        view.add_row(describe(s.url), "-" if s.lag_seconds is None else f"{s.lag_seconds:.3f}",
                     "yes" if s.eligible else "no", s.reason)
    err.print(view)
    err.print(f"reads go to {describe(router.read_url())}")
