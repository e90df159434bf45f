"""``maintain``: run one maintenance job now, schedule them all, and read their history."""

from __future__ import annotations

import signal
from datetime import datetime, timezone
from typing import Annotated

import typer
from rich.table import Table

from truelabel_db.cli.options import JsonOption, TargetOption
from truelabel_db.cli.output import emit_json, err

maintain_app = typer.Typer(no_args_is_help=True, help="VACUUM ANALYZE, REINDEX CONCURRENTLY, partitions, view refresh.")


def register(app: typer.Typer) -> None:
    app.add_typer(maintain_app, name="maintain")


@maintain_app.command("run")
def run(
    job: Annotated[str, typer.Argument(help="vacuum-analyze | reindex | partitions | refresh-views")],
    target: TargetOption = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for a run already in progress instead of skipping.")] = False,
    ahead: Annotated[int, typer.Option(min=0, help="partitions: months to create ahead.")] = 3,
    retention: Annotated[int, typer.Option(min=1, help="partitions: months to keep (plan: 6).")] = 6,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="partitions: print the plan, change nothing.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Run one job now, giving way to the app; a second run of the same job skips (or waits)."""
    from truelabel_db.errors import ConfigError
    from truelabel_db.maintain import MaintenanceError, job_named, run_job
    from truelabel_db.maintain.partitions import PartitionMaintenance, plan_partitions
    from truelabel_db.postgres import connect, resolve_target

    if ahead < 0 or retention < 1:
        raise ConfigError("--ahead must be 0 or more and --retention at least 1 month")
    chosen = job_named(job)
    if isinstance(chosen, PartitionMaintenance):
        chosen.ahead, chosen.retention = ahead, retention
    with connect(resolve_target(target), autocommit=True, application_name=f"truelabel-db maintain {job}") as conn:
        if dry_run:
            if not isinstance(chosen, PartitionMaintenance):
                raise ConfigError("--dry-run is for the partitions job")
            plan = plan_partitions(conn, datetime.now(timezone.utc), ahead=ahead, retention=retention)
            if json_out:
                emit_json(plan.to_dict())
                return
            for key, value in plan.to_dict().items():
                shown = ", ".join(value) if isinstance(value, list) else value
                err.print(f"{key.replace('_', ' ')}: {shown or '-'}")
            return
        result = run_job(conn, chosen, wait=wait)
    if json_out:
        emit_json(result.to_dict())
    if result.status == "failed":
        raise MaintenanceError(f"{job} failed (run {result.run_id}): {result.error}")
    if result.status == "skipped":
        holder = result.detail.get("holder_pid")
        err.print(f"{job} skipped: another run holds it" + (f" (backend pid {holder})" if holder else "")
                  + "; use --wait to wait for it")
        return
    if not json_out:
        err.print(f"{job} done in {result.seconds:.1f} s (run {result.run_id}): {result.detail}")


@maintain_app.command("schedule")
def schedule(
    target: TargetOption = None,
    install_pg_cron: Annotated[bool, typer.Option("--install-pg-cron", help="Schedule in pg_cron what it can run.")] = False,
    daemon: Annotated[bool, typer.Option("--daemon", help="Run the built-in scheduler in the foreground.")] = False,
    crontab: Annotated[bool, typer.Option("--crontab", help="Print crontab lines calling `maintain run`.")] = False,
) -> None:
    """The plan's times (UTC): vacuum 03:00 daily, reindex Sunday 04:00, partitions 05:00, views every 10 min."""
    from truelabel_db.errors import ConfigError
    from truelabel_db.maintain.schedule import PLAN_SCHEDULE, Scheduler, crontab_lines
    from truelabel_db.maintain.schedule import install_pg_cron as install
    from truelabel_db.postgres import connect, resolve_target

    if sum((install_pg_cron, daemon, crontab)) > 1:
        raise ConfigError("choose one of --install-pg-cron, --daemon, --crontab")
    if crontab:
        typer.echo("\n".join(crontab_lines()))
        return
    if not (install_pg_cron or daemon):
        view = Table("job", "cron (UTC)")
        for name, expr in PLAN_SCHEDULE.items():
            view.add_row(name, expr)
        err.print(view)
        return
    url = resolve_target(target)
    if install_pg_cron:
        with connect(url, autocommit=True) as conn:
            jobs = install(conn)
        err.print("pg_cron jobs: " + ", ".join(f"{n} (id {i})" for n, i in jobs.items())
                  + "; reindex and retention drops need --daemon or an OS cron (see --crontab)")
        return
    connect(url).close()
    stopping = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.update(now=True))
    err.print("scheduler running (UTC): " + ", ".join(f"{n} '{e}'" for n, e in PLAN_SCHEDULE.items()))
    try:
        Scheduler(url).serve_forever(stop=lambda: stopping["now"], on_result=lambda r: err.print(
            f"{datetime.now(timezone.utc):%H:%M} {r.job}: {r.status} {r.error or ''}"))
    except KeyboardInterrupt:
        pass


@maintain_app.command("history")
def history(
    target: TargetOption = None,
    job: Annotated[str | None, typer.Option(help="Only this job.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
    json_out: JsonOption = False,
) -> None:
    """The latest recorded runs, newest first."""
    from truelabel_db.maintain.runner import recent_runs
    from truelabel_db.postgres import connect, resolve_target

    with connect(resolve_target(target), autocommit=True) as conn:
        runs = recent_runs(conn, limit, job)
    if json_out:
        emit_json(runs)
        return
    view = Table("run", "job", "status", "started", "finished", "error")
    for r in runs:
        view.add_row(str(r["run_id"]), r["job"], r["status"], f"{r['started_at']:%Y-%m-%d %H:%M:%S}",
                     f"{r['finished_at']:%H:%M:%S}" if r["finished_at"] else "-", r["error"] or "")
    err.print(view)
