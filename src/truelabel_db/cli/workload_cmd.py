"""``workload``: play the app against a legacy file (seeded, replayable), by hand."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from truelabel_db.cli.options import JsonOption, SourceOption, TargetOption, positive
from truelabel_db.cli.output import emit_json, err
from truelabel_db.errors import ExitCode
from truelabel_db.workload.summary import WorkloadSummary


def register(app: typer.Typer) -> None:
    app.command("workload")(workload)


def workload(
    source: SourceOption,
    seed: Annotated[int, typer.Option(help="Same seed and options, same operations (per writer).")] = 1,
    seconds: Annotated[float | None, typer.Option(callback=positive, help="Stop after this long.")] = None,
    operations: Annotated[int | None, typer.Option(
        min=1, help="Stop after this many operations (all writers).")] = None,
    rate: Annotated[float, typer.Option(
        min=0, help="Operations per second, all writers together; 0: as fast as possible.")] = 0.0,
    processes: Annotated[int, typer.Option(min=1, help="Writer processes.")] = 1,
    fk_on_share: Annotated[float, typer.Option(
        min=0, max=1, help="Share of operations from the app (foreign keys ON); the rest come from scripts (OFF).")] = 0.8,
    dirt_rate: Annotated[float, typer.Option(
        min=0, max=1, help="Share of inserts and updates that carry a dirty value.")] = 0.0,
    journal_mode: Annotated[str | None, typer.Option(help="Switch the file to delete or wal first (default: leave it).")] = None,
    synchronous: Annotated[str | None, typer.Option(help="The writers' PRAGMA synchronous: off, normal or full (default: SQLite's).")] = None,
    busy_timeout_ms: Annotated[int, typer.Option(
        min=0, help="How long a writer waits for a lock before it retries.")] = 5000,
    mix: Annotated[str | None, typer.Option(help="Change the mix: KIND=WEIGHT,... (0 leaves a kind out).")] = None,
    log_dir: Annotated[Path | None, typer.Option(help="Write each writer's operation log (JSON lines) here.")] = None,
    gate: Annotated[bool, typer.Option("--gate/--no-gate", help="Honour the cutover gate and write to the published primary.")] = False,
    gate_redis: Annotated[str | None, typer.Option(envvar="TRUELABEL_REDIS_URL", help="Redis holding the gate (with --gate).")] = None,
    primary_file: Annotated[Path | None, typer.Option(help="File holding the published primary (with --gate).")] = None,
    write_to: Annotated[str, typer.Option(help="Where writes go when no gate names the primary: sqlite or postgresql.")] = "sqlite",
    target: TargetOption = None,
    json_out: JsonOption = False,
) -> None:
    """Write to a legacy file as the app does: every table, nested creates, unique-column changes,
    upserts, INSERT OR REPLACE, deletes of parents with their children, foreign keys on and off."""
    from truelabel_db.client import AppGate
    from truelabel_db.errors import ConfigError
    from truelabel_db.workload import WorkloadOptions, parse_mix, run_workload

    if gate and not (gate_redis or primary_file):
        raise ConfigError("--gate needs --gate-redis (or TRUELABEL_REDIS_URL) or --primary-file")
    options = WorkloadOptions(
        seed=seed, processes=processes, rate=rate, seconds=seconds, operations=operations,
        fk_on_share=fk_on_share, dirt_rate=dirt_rate, journal_mode=journal_mode, synchronous=synchronous,
        busy_timeout_ms=busy_timeout_ms, weights=parse_mix(mix or ""), log_dir=log_dir, target=write_to,
        postgres_url=target)
    factory = partial(AppGate, redis_url=gate_redis, primary_file=primary_file) if gate else None
    with err.status("writing") as status:
        summary = run_workload(source, options, gate=factory, progress=lambda p: status.update(
            f"{p['done']:,} operations: {p['committed']:,} committed, {p['refused']:,} refused"))
    if json_out:
        emit_json(summary.to_dict())
    else:
        _render(summary)
    summary.raise_for_failure()
    if summary.interrupted:
        raise typer.Exit(ExitCode.INTERRUPTED)


def _render(summary: WorkloadSummary) -> None:
    view = Table("operation", "committed", "refused", "stopped", "error")
    for kind, counts in sorted(summary.by_kind.items()):
        view.add_row(kind, *(f"{counts[o]:,}" for o in ("committed", "refused", "stopped", "error")))
    err.print(view)
    refused = ", ".join(f"{reason} {n:,}" for reason, n in sorted(summary.refused.items())) or "none"
    err.print(f"seed {summary.seed}: {summary.operations:,} operations ({summary.statements:,} statements) "
              f"by {summary.processes} writer(s) in {summary.seconds:.1f}s, {summary.rate:,.0f}/s; "
              f"refused: {refused}; lock retries {summary.lock_retries:,}, fence retries "
              f"{summary.fence_retries:,}, gate waits {summary.gate_waits:,}")
    for log in summary.logs:
        err.print(f"operation log: {log}")
