"""``monitor``: the database's health as tables (or ``--json``), and as Prometheus metrics."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from truelabel_db.cli.options import JsonOption, TargetOption
from truelabel_db.cli.output import emit_json, err
from truelabel_db.errors import ExitCode

monitor_app = typer.Typer(no_args_is_help=True, help="Slow queries, bloat, indexes, partitions, replication.")


def register(app: typer.Typer) -> None:
    app.add_typer(monitor_app, name="monitor")


def _report(names: list[str], target: str | None, json_out: bool) -> None:
    from truelabel_db.cli.monitor_render import RENDERERS
    from truelabel_db.monitor.snapshot import take_snapshot
    from truelabel_db.postgres import connect, resolve_target

    with connect(resolve_target(target), autocommit=True, application_name="truelabel-db monitor") as conn:
        snapshot = take_snapshot(conn, names)
    if json_out:
        document = snapshot.to_dict()
        emit_json(document if len(names) > 1 else {names[0]: document.get(names[0]), "errors": snapshot.errors})
    else:
        for name in names:
            if len(names) > 1:
                err.print(f"[bold]{name}[/]")
            if name in snapshot.sections:
                RENDERERS[name](snapshot.sections[name])
    for name, message in snapshot.errors.items():
        err.print(f"[bold red]{name} failed[/]: {message}")
    if snapshot.errors:
        raise typer.Exit(ExitCode.TARGET)


def _command(name: str, doc: str) -> None:
    def command(target: TargetOption = None, json_out: JsonOption = False) -> None:
        _report([name], target, json_out)

    command.__doc__ = doc
    monitor_app.command(name)(command)


for _name, _doc in (
    ("slow-queries", "Statements slower than 100 ms on average (pg_stat_statements; how to enable it if absent)."),
    ("bloat", "Table and b-tree index bloat by the statistics-based estimate (pgstattuple where it does not apply)."),
    ("indexes", "Index scans, unused indexes (with the statistics' age), duplicate and redundant ones."),
    ("partitions", "Future partitions present, rows in the default partition, partitions past retention."),
    ("cache-hit", "Share of reads served from shared buffers."),
    ("replication", "Replicas streaming from this primary and their lag (or this replica's own lag)."),
    ("migration-lag", "The migration follower's lag, as it recorded it."),
    ("maintenance", "Each maintenance job's last run and the time since it last succeeded."),
):
    _command(_name, _doc)


@monitor_app.command("all")
def all_reports(target: TargetOption = None, json_out: JsonOption = False) -> None:
    """Every report."""
    from truelabel_db.monitor.snapshot import REPORTS

    _report(list(REPORTS), target, json_out)


@monitor_app.command("serve")
def serve(
    target: TargetOption = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Serve http://HOST:PORT/metrics.")] = 9187,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Serve every report as Prometheus metrics, collected fresh at each scrape, until stopped."""
    from truelabel_db.monitor.metrics import serve as serve_metrics
    from truelabel_db.monitor.metrics import snapshot_of
    from truelabel_db.postgres import connect, resolve_target

    url = resolve_target(target)
    connect(url).close()  # a wrong URL fails now, not at the first scrape
    server = serve_metrics(port, lambda: snapshot_of(url), host=host)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    err.print(f"serving Prometheus metrics on http://{host}:{port}/metrics")
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
