"""``bench soak``: the whole life cycle under the app's workload, seed after seed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from truelabel_db.cli.options import JsonOption, TargetOption, positive
from truelabel_db.cli.output import emit_json, err
from truelabel_db.errors import ExitCode

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def register(bench_app: typer.Typer) -> None:
    bench_app.command("soak")(soak)


def soak(
    minutes: Annotated[Optional[float], typer.Option(
        callback=positive, help="Run cycles for this long (a new seed each).")] = None,
    seed: Annotated[int, typer.Option(help="The first cycle's seed; each next cycle adds one.")] = 1,
    cycles: Annotated[Optional[int], typer.Option(help="Stop after this many cycles (1: rerun one seed).")] = None,
    scale: Annotated[float, typer.Option(callback=positive, help="Size of each generated legacy file.")] = 0.01,
    rate: Annotated[float, typer.Option(
        min=0, help="The workload's operations per second, all writers together.")] = 300.0,
    processes: Annotated[int, typer.Option(min=1, help="Writer processes.")] = 2,
    phase_seconds: Annotated[float, typer.Option(
        callback=positive, help="How long the workload writes between steps.")] = 5.0,
    dirt_rate: Annotated[float, typer.Option(min=0, max=1, help="Share of operations writing dirty values.")] = 0.0,
    target: TargetOption = None,
    redis: Annotated[str, typer.Option(help="A Redis database of the soak's own (emptied before each cycle).")]
        = "redis://127.0.0.1:6379/11",
    work_dir: Annotated[Path, typer.Option(help="Legacy files and operation logs, per seed.")] = Path(".bench/soak"),
    json_out: JsonOption = False,
) -> None:
    """capture → copy → follow → cutover → rollback → follow → second cutover → rollback, under a
    workload that plays the app; verify after every phase; the seeds, and how to rerun a failing one."""
    from truelabel_db.bench.lifecycle import LifecycleOptions, run_soak

    if minutes is None and cycles is None:
        cycles = 1
    options = LifecycleOptions(scale=scale, processes=processes, rate=rate, phase_seconds=phase_seconds,
                               dirt_rate=dirt_rate)
    report = run_soak(seed, target or DEFAULT_ADMIN_URL, redis, work_dir, minutes=minutes, cycles=cycles,
                      options=options, say=lambda line: err.print(line, highlight=False))
    if json_out:
        emit_json(report.to_dict())
    view = Table("seed", "journal", "phases ok", "cutover pauses ms", "rollback replayed", "quarantined",
                 "operations", "to both sides", "outcome")
    for cycle in report.cycles:
        pauses = [p.detail.get("write_pause_ms") for p in cycle.phases if p.name.endswith("cutover")]
        replayed = [p.detail.get("replayed") for p in cycle.phases if p.name in ("rollback", "final rollback")]
        held = max((p.detail.get("quarantined", 0) for p in cycle.phases), default=0)
        view.add_row(str(cycle.seed), cycle.journal_mode, f"{sum(p.ok for p in cycle.phases)}/{len(cycle.phases)}",
                     ", ".join(f"{p:.0f}" for p in pauses if p is not None), ", ".join(map(str, replayed)),
                     str(held), f"{cycle.workload.get('operations', 0):,}",
                     ", ".join(f"{k} {v}" for k, v in cycle.workload.get("targets", {}).items()),
                     "[green]equal[/]" if cycle.ok else "[bold red]FAILED[/]")
    err.print(view)
    failing = [c for c in report.cycles if not c.ok]
    err.print(f"{len(report.cycles)} cycle(s) in {report.seconds:.0f} s; {len(failing)} failed")
    for cycle in failing:
        err.print(f"  seed {cycle.seed}: {next(p.name for p in cycle.phases if not p.ok) if cycle.phases else '?'}"
                  f" — rerun with: {cycle.reproduce()}")
    if failing:
        raise typer.Exit(ExitCode.FAILED)
