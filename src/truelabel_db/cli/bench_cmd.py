"""``bench``: hot paths measured beside their references, printed side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from truelabel_db.cli.options import BENCH_REDIS_URL, BenchRedisOption, JsonOption, TargetOption, positive
from truelabel_db.cli.output import emit_json, err
from truelabel_db.errors import ConfigError

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks against the reference tools.")


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")


@bench_app.command("copy")
def copy(
    scale: Annotated[float, typer.Option(callback=positive, help="Legacy database size (5 ≈ 1.8M rows).")] = 5.0,
    target: TargetOption = None,
    workers: Annotated[int, typer.Option(min=1)] = 4,
    runs: Annotated[int, typer.Option(min=1, help="Passes over every contender (ratios are per pass).")] = 1,
    dirty: Annotated[bool, typer.Option(help="Also copy a dirty file of the same size.")] = True,
    pgloader: Annotated[bool, typer.Option(help="Also run pgloader, when installed.")] = True,
    work_dir: Annotated[Path, typer.Option(help="Where generated files are kept and reused.")] = Path(".bench"),
    json_out: JsonOption = False,
) -> None:
    """Our copy vs the same-work floor (pg_restore of our result) vs pgloader, on the same file."""
    from truelabel_db.bench.copy_bench import run_copy_bench

    admin_url = target or DEFAULT_ADMIN_URL
    result = run_copy_bench(scale, admin_url, workers, work_dir, runs=runs, dirty=dirty, pgloader=pgloader)
    doc = result.to_dict()
    if json_out:
        emit_json(doc)
    err.print(f"legacy file {doc['legacy_path']}: {doc['legacy_rows']:,} rows, {doc['legacy_mb']} MB")
    _wide()
    for number, run in enumerate(doc["runs"], 1):
        view = Table("contender", "rows", "wall s", "rows/s", "MB/s", "peak MB", "note",
                     title=f"run {number}")
        for c in run["contenders"]:
            peak = f"{c['peak_rss_mb']:.0f}" if c["peak_rss_mb"] else "-"
            view.add_row(c["name"], f"{c['rows']:,}", f"{c['seconds']:.2f}", f"{c['rows_per_second']:,}",
                         f"{c['mb_per_second']}", peak, c["note"])
        err.print(view)
        err.print("  " + "; ".join(f"{name.replace('_', ' ')} {value}×" for name, value in run["ratios"].items()))


@bench_app.command("verify")
def verify_bench(
    scale: Annotated[float, typer.Option(callback=positive, help="Legacy database size (5 ≈ 1.8M rows).")] = 5.0,
    target: TargetOption = None,
    workers: Annotated[int, typer.Option(min=1)] = 4,
    runs: Annotated[int, typer.Option(min=1, help="Passes (each: copy, then verify the copy).")] = 1,
    dirty: Annotated[bool, typer.Option(help="Also copy and verify a dirty file of the same size.")] = True,
    work_dir: Annotated[Path, typer.Option(help="Where generated files are kept and reused.")] = Path(".bench"),
    json_out: JsonOption = False,
) -> None:
    """The full verify of a copy beside the copy's own time, on the same file."""
    from truelabel_db.bench.verify_bench import run_verify_bench

    doc = run_verify_bench(scale, target or DEFAULT_ADMIN_URL, workers, work_dir, runs=runs, dirty=dirty).to_dict()
    if json_out:
        emit_json(doc)
    view = Table("file", "rows", "copy s", "verify s", "verify / copy", "equal", "ranges read row by row",
                 "verify peak MB")
    for r in doc["runs"]:
        view.add_row("dirty" if r["dirty"] else "clean", f"{r['rows']:,}", f"{r['copy_seconds']:.2f}",
                     f"{r['verify_seconds']:.2f}", f"{r['verify_time_vs_copy']}×", "yes" if r["equal"] else "NO",
                     str(r["mismatched_ranges"]), f"{r['verify_peak_rss_mb']:.0f}")
    err.print(f"legacy file {doc['legacy_path']}")
    err.print(view)


@bench_app.command("sync")
def sync(
    scale: Annotated[float, typer.Option(callback=positive, help="Legacy database size.")] = 1.0,
    target: TargetOption = None,
    seconds: Annotated[float, typer.Option(callback=positive, help="Length of each writer phase.")] = 5.0,
    rate: Annotated[float, typer.Option(
        min=0, help="The steady writer's rate, writes/s (0: as fast as it can).")] = 500.0,
    journal: Annotated[str, typer.Option(help="The legacy file's journal mode: delete or wal.")] = "delete",
    work_dir: Annotated[Path, typer.Option()] = Path(".bench"),
    json_out: JsonOption = False,
) -> None:
    """Trigger overhead on the app, the follower's apply rate, and lag at a steady rate and in bursts."""
    from truelabel_db.bench.copy_bench import clean_legacy
    from truelabel_db.bench.sync_bench import run_sync_bench

    base, admin_url = clean_legacy(work_dir, scale), target or DEFAULT_ADMIN_URL
    if journal not in ("delete", "wal"):
        raise ConfigError("--journal must be delete or wal")
    doc = run_sync_bench(base, admin_url, work_dir / "sync", seconds=seconds, steady_rate=rate,
                         journal=journal).to_dict()
    if json_out:
        emit_json(doc)
    view = Table("measure", "value")
    view.add_row("writer, fastest, no capture", f"{doc['writer_max_rate_without_capture']:,} writes/s")
    view.add_row("writer, fastest, with capture", f"{doc['writer_max_rate_with_capture']:,} writes/s")
    view.add_row("trigger overhead", f"{doc['trigger_overhead']:.1%}")
    view.add_row("follower apply rate (backlog)", f"{doc['apply_rate']:,} changes/s "
                 f"({doc['backlog_changes']:,} in {doc['apply_seconds']} s; "
                 f"{doc['apply_vs_fastest_writer']}× the fastest writer)")
    for phase in ("steady", "burst"):
        p = doc[phase]
        view.add_row(f"lag while {phase} ({p['writer']['rate']:,} writes/s)",
                     f"p50 {p['p50_ms']} ms, p99 {p['p99_ms']} ms, max {p['max_ms']} ms")
    err.print(view)


@bench_app.command("cutover")
def cutover_bench(
    scale: Annotated[float, typer.Option(callback=positive, help="Legacy database size.")] = 5.0,
    target: TargetOption = None,
    redis: Annotated[str, typer.Option(envvar="TRUELABEL_REDIS_URL")] = "redis://127.0.0.1:6379/0",
    runs: Annotated[int, typer.Option(min=1)] = 3,
    rate: Annotated[float, typer.Option(
        min=0, help="The gated writer's rate, writes/s (0: as fast as it can).")] = 500.0,
    work_dir: Annotated[Path, typer.Option()] = Path(".bench"),
    json_out: JsonOption = False,
) -> None:
    """The write pause (p100 over several runs), each step's time, and the writer's failed writes."""
    from truelabel_db.bench.copy_bench import clean_legacy
    from truelabel_db.bench.cutover_bench import run_cutover_bench

    base, admin_url = clean_legacy(work_dir, scale), target or DEFAULT_ADMIN_URL
    doc = run_cutover_bench(base, admin_url, redis, work_dir / "cutover", runs=runs, rate=rate).to_dict()
    if json_out:
        emit_json(doc)
    steps = list(doc["runs"][0]["steps"]) if doc["runs"] else []
    view = Table("run", "pause ms", *steps, "writes", "failed", "retried", "longest wait ms")
    for r in doc["runs"]:
        view.add_row(str(r["run"]), f"{r['write_pause_ms']:.0f}", *(f"{r['steps'][s]:.0f}" for s in steps),
                     f"{r['writes_sqlite'] + r['writes_postgres']:,}", str(r["failed_writes"]),
                     str(r["retried_writes"]), f"{r['longest_wait_ms']:.0f}")
    err.print(view)
    err.print(f"write pause p100: {doc['write_pause_p100_ms']} ms; failed writes: {doc['failed_writes']}")


@bench_app.command("backup")
def backup_bench(
    scale: Annotated[float, typer.Option(callback=positive, help="Legacy database size (5 ≈ 1.8M rows).")] = 5.0,
    target: TargetOption = None,
    jobs: Annotated[int, typer.Option(min=1, help="Parallel jobs for pg_dump and pg_restore.")] = 2,
    work_dir: Annotated[Path, typer.Option()] = Path(".bench"),
    json_out: JsonOption = False,
) -> None:
    """Our encrypted backup and restore vs pg_dump | gzip and pg_restore; PITR; the DR drill's RTO and RPO."""
    from truelabel_db.bench.backup_bench import run_backup_bench

    doc = run_backup_bench(scale, target or DEFAULT_ADMIN_URL, work_dir, jobs).to_dict()
    if json_out:
        emit_json(doc)
    err.print(f"scale {doc['scale']:g}: {doc['database_rows']:,} rows, database {doc['database_mb']} MB")
    view = Table("backup", "wall s", "stored MB", "note")
    for b in doc["backups"]:
        view.add_row(b["name"], f"{b['seconds']:.1f}", f"{b['bytes'] / 1e6:.1f}", b["note"])
    err.print(view)
    view = Table("restore", "wall s")
    for r in doc["restores"]:
        view.add_row(r["name"], f"{r['seconds']:.1f}")
    err.print(view)
    view = Table("PITR / drill", "value")
    for name, value in doc["pitr"].items():
        view.add_row(name.replace("_", " "), str(value))
    for step in doc["drill"]["steps"]:
        view.add_row(f"drill: {step['name']}", f"{step['seconds']:.2f} s")
    view.add_row("drill RTO", f"{doc['drill']['rto_seconds']:.2f} s")
    view.add_row("drill RPO", f"{doc['drill']['rpo_seconds']:.2f} s ({doc['drill']['rpo_source']})")
    err.print(view)
@bench_app.command("queries")
def queries(
    scale: Annotated[float, typer.Option(callback=positive, help="Legacy database size (5 ≈ 1.8M rows).")] = 5.0,
    target: TargetOption = None,
    budget: Annotated[float, typer.Option(
        callback=positive, help="Seconds per path and contender (at least 3 runs).")] = 8.0,
    work_dir: Annotated[Path, typer.Option()] = Path(".bench"),
    json_out: JsonOption = False,
) -> None:
    """Each hot path on SQLite (the app's N+1, best SQL, best SQL + indexes) and on PostgreSQL."""
    from truelabel_db.bench.queries_bench import PLAN, run_queries_bench

    result = run_queries_bench(scale, target or DEFAULT_ADMIN_URL, work_dir, budget=budget,
                               progress=lambda step: err.print(f"[dim]… {step}[/]"))
    doc = result.to_dict()
    if json_out:
        emit_json(doc)
    err.print(f"scale {scale:g}: " + ", ".join(f"{n:,} {t}" for t, n in doc["rows"].items()))
    view = Table("hot path", "SQLite app (N+1)", "SQLite best SQL", "SQLite + indexes", "PostgreSQL",
                 "improvement vs app", "plan")
    for path, entry in doc["paths"].items():
        cells = [f"{entry[c]['median_ms']:,.1f} / {entry[c]['p99_ms']:,.1f}" for c in result.contenders]
        plan = entry.get("plan")
        plan_text = (f"{PLAN[path][0]:,.0f} → {PLAN[path][1]:,.0f} ms, ≥{plan['improvement']:.0%}: "
                     f"{'met' if plan['met'] else 'NOT met'}") if plan else "-"
        view.add_row(path, *cells, f"{entry['improvement_vs_app']:.1%}", plan_text)
    err.print("median / p99 in ms")
    _wide()
    err.print(view)


@bench_app.command("load")
def load(
    scale: Annotated[float, typer.Option(callback=positive, help="Legacy database size (5 ≈ 1.8M rows).")] = 5.0,
    redis_url: BenchRedisOption = BENCH_REDIS_URL,
    users: Annotated[int, typer.Option(
        min=1, help="People browsing at once (each with a keep-alive connection).")] = 5000,
    think: Annotated[float, typer.Option(min=0, help="Their mean think time between requests, seconds.")] = 5.0,
    ramp: Annotated[float, typer.Option(min=0, help="Seconds over which the users arrive.")] = 15.0,
    scan_rates: Annotated[str, typer.Option(help="Consumer scans arriving per second, rates tried in turn "
                                                 "(comma-separated) until one is not served.")] = "1000,2000,3000,4000",
    batch_rate: Annotated[float, typer.Option(min=0, help="POST /scans/batch requests arriving per second.")] = 20.0,
    batch_rows: Annotated[int, typer.Option(min=1, help="Scans per batch request.")] = 500,
    connections: Annotated[int, typer.Option(min=1, help="Keep-alive connections carrying the scans.")] = 256,
    seconds: Annotated[float, typer.Option(callback=positive, help="Measured seconds of each load.")] = 30.0,
    workers: Annotated[int, typer.Option(min=1, help="Service worker processes.")] = 2,
    pgbouncer_pool: Annotated[int, typer.Option(min=1, help="PgBouncer's server connections.")] = 20,
    only: Annotated[str | None, typer.Option(help="Run only the configurations whose name contains this "
                                                  "(e.g. 'postgresql', 'pgbouncer', 'cache on').")] = None,
    scaling: Annotated[str, typer.Option(help="Client connection counts for the PgBouncer comparison "
                                              "(comma-separated; empty to skip).")] = "50,500,2000",
    work_dir: Annotated[Path, typer.Option()] = Path(".bench"),
    json_out: JsonOption = False,
) -> None:
    """The service under people and arrivals, on SQLite and PostgreSQL, cache off/on, with and without PgBouncer."""
    from truelabel_db.bench.load_bench import CONFIGS, LoadPlan, config_name, run_load_bench

    plan = LoadPlan(users=users, think=think, ramp=ramp,
                    scan_rates=tuple(float(r) for r in scan_rates.split(",") if r.strip()), batch_rate=batch_rate,
                    batch_rows=batch_rows, connections=connections, seconds=seconds, workers=workers,
                    pgbouncer_pool=pgbouncer_pool)
    configs = tuple(c for c in CONFIGS if only is None or only in config_name(*c))
    if not configs:
        raise ConfigError(f"no configuration matches --only {only!r}")
    counts = tuple(int(n) for n in scaling.split(",") if n.strip())
    doc = run_load_bench(scale, redis_url, work_dir, plan, configs=configs, scaling=counts,
                         progress=lambda step: err.print(f"[dim]… {step}[/]")).to_dict()
    if json_out:
        emit_json(doc)
    _wide()
    view = Table("database", "cache", "load", "conns", "req/s", "durable writes/s", "p50 ms", "p99 ms",
                 "p99.9 ms", "errors", "PG backends", "generator late p99 ms")
    for r in doc["runs"]:
        view.add_row(r["database"] + (" + PgBouncer" if r["pgbouncer"] else ""), "on" if r["cache"] else "off",
                     r["load"], f"{r['connections']:,}", f"{r['rps']:,.0f}", f"{r['writes_per_s']:,.0f}",
                     _ms(r["p50_ms"]), _ms(r["p99_ms"]), _ms(r["p999_ms"]), f"{r['errors']:,}",
                     "-" if r["backends"] is None else str(r["backends"]), _ms(r["late_p99_ms"]))
    err.print(view)
    if doc["connection_scaling"]:
        scaled = Table("client connections", "through", "connected", "queries", "PG backends", "refused")
        for s in doc["connection_scaling"]:
            scaled.add_row(f"{s['clients']:,}", s["through"], f"{s['connected']:,}", f"{s['queries']:,}",
                           str(s["backends"]), "; ".join(f"{n}× {k}" for k, n in s["refused"].items()) or "-")
        err.print(scaled)
    goals = Table("target", "met", "PostgreSQL (best)", "SQLite (best)", "ratio")
    for t in doc["targets"]:
        goals.add_row(t["target"], "met" if t["met"] else "NOT met", t["postgresql"] or "-", t["sqlite"] or "-",
                      f"{t['ratio']}×" if t["ratio"] else "-")
    err.print(goals)


@bench_app.command("cache")
def cache_bench(
    scale: Annotated[float, typer.Option(callback=positive, help="Legacy database size.")] = 0.5,
    target: TargetOption = None,
    redis_url: BenchRedisOption = BENCH_REDIS_URL,
    samples: Annotated[int, typer.Option(min=1, help="Changes timed for plain SQL (the follower: a quarter).")] = 200,
    mix_seconds: Annotated[float, typer.Option(
        callback=positive, help="Seconds of the read mix, per configuration.")] = 30.0,
    write_rate: Annotated[float, typer.Option(min=0, help="Product renames per second during the read mix.")] = 5.0,
    writes: Annotated[int, typer.Option(min=1, help="Statements per case and round of the trigger cost.")] = 300,
    work_dir: Annotated[Path, typer.Option()] = Path(".bench"),
    json_out: JsonOption = False,
) -> None:
    """Staleness per writer (commit to the first fresh read), hit ratio, and the triggers' cost."""
    from truelabel_db.bench.cache_bench import run_cache_bench

    doc = run_cache_bench(scale, target or DEFAULT_ADMIN_URL, redis_url, work_dir, samples=samples,
                          mix_seconds=mix_seconds, write_rate=write_rate, writes=writes,
                          progress=lambda step: err.print(f"[dim]… {step}[/]")).to_dict()
    if json_out:
        emit_json(doc)
    _wide()
    stale = Table("writer", "changes", "p50 ms", "p99 ms", "max ms", "target")
    for writer, d in doc["staleness"].items():
        stale.add_row(writer, str(d["n"]), _ms(d.get("p50_ms")), _ms(d.get("p99_ms")), _ms(d.get("max_ms")),
                      "the rule's window" if "window" in writer else "p99 < 100, max < 1,000")
    ref = doc["reference_stale"]
    stale.add_row("reference: no database events, direct SQL", str(ref["samples"]),
                  f"{ref['stale']} of {ref['samples']} still stale {ref['stale_after_s']:g} s after commit", "", "",
                  "until the TTL (60 s L1, 300 s L2)")
    err.print(stale)
    hits = Table("read mix", "hit ratio", "target")
    for label, ratio in doc["hit_ratio"].items():
        hits.add_row(label, "-" if ratio is None else f"{ratio:.1%}", "today's kept (plan: 85 %)")
    err.print(hits)
    cost = Table("write", "with triggers µs", "without µs", "overhead", "target")
    for r in doc["write_cost"]:
        cost.add_row(r["write"], f"{r['with_triggers_us']:,.1f}", f"{r['without_us']:,.1f}", f"{r['overhead']:+.1%}",
                     "< 10 %")
    err.print(cost)


@bench_app.command("limits")
def limits_bench(
    redis_url: Annotated[str, typer.Option("--redis", help="Redis for the shared buckets.")] = BENCH_REDIS_URL,
    admits: Annotated[int, typer.Option(min=1, help="Scans admitted per measurement.")] = 5000,
    concurrency: Annotated[int, typer.Option(min=1, help="Scans admitted at once in the concurrent measurement.")] = 50,
    rounds: Annotated[int, typer.Option(min=1, help="Measurements per limiter (the median is shown).")] = 3,
    json_out: JsonOption = False,
) -> None:
    """A scan's rate limit: this worker's buckets in memory vs the buckets every worker shares in Redis."""
    from truelabel_db.bench.limits_bench import run_limits_bench

    try:
        doc = run_limits_bench(redis_url, admits=admits, concurrency=concurrency, rounds=rounds).to_dict()
    except RuntimeError as exc:
        raise ConfigError(str(exc)) from exc
    if json_out:
        emit_json(doc)
    _wide()
    view = Table("limiter", "µs per scan, one at a time", f"scans/s, {concurrency} at once", "refused")
    for r in doc["runs"]:
        view.add_row(r["limiter"], f"{r['sequential_us']:,.1f}", f"{r['concurrent_per_second']:,.0f}",
                     str(r["refused"]))
    err.print(view)


@bench_app.command("explain")
def explain(
    scale: Annotated[float, typer.Option(
        callback=positive, help="Legacy database size, when no --target is given.")] = 5.0,
    target: TargetOption = None,
    prepare_on: Annotated[str, typer.Option(help="The server a scale's database is prepared on.")] = DEFAULT_ADMIN_URL,
    work_dir: Annotated[Path, typer.Option()] = Path(".bench"),
    json_out: JsonOption = False,
) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of every hot path; --target explains an existing database as it is."""
    from truelabel_db.bench.explain import explain_hot_paths
    from truelabel_db.bench.queries_bench import prepare

    url = target or prepare(scale, prepare_on, work_dir, name="explain", indexed=False)[2]
    plans = explain_hot_paths(url, progress=lambda step: err.print(f"[dim]… {step}[/]"))
    if json_out:
        emit_json(plans)
    for name, plan in plans.items():
        err.print(f"[bold]{name}[/]")
        err.print(plan, markup=False, highlight=False, soft_wrap=True)
        err.print()


@bench_app.command("pools")
def pools(
    scale: Annotated[float, typer.Option(
        callback=positive, help="Legacy database size, when no --target is given.")] = 5.0,
    target: TargetOption = None,
    prepare_on: Annotated[str, typer.Option(help="The server a scale's database is prepared on.")] = DEFAULT_ADMIN_URL,
    calls: Annotated[int, typer.Option(min=1, help="Calls per case.")] = 3000,
    work_dir: Annotated[Path, typer.Option()] = Path(".bench"),
    json_out: JsonOption = False,
) -> None:
    """psycopg's blocking pool in threads against its async pool: hot-path calls per second."""
    from truelabel_db.bench.pool_compare import compare_pools
    from truelabel_db.bench.queries_bench import prepare

    url = target or prepare(scale, prepare_on, work_dir, name="explain", indexed=False)[2]
    rows = compare_pools(url, calls=calls)
    if json_out:
        emit_json(rows)
    _wide()
    view = Table("case", "blocking pool, threads", "async pool, asyncio", "async pool, uvloop")
    for r in rows:
        view.add_row(r["case"], f"{r['threads']:,}/s", f"{r['async (asyncio)']:,}/s", f"{r['async (uvloop)']:,}/s")
    err.print(view)


@bench_app.command("generators")
def generators(
    scale: Annotated[float, typer.Option(callback=positive, help="Legacy database size.")] = 5.0,
    redis_url: BenchRedisOption = BENCH_REDIS_URL,
    users: Annotated[int, typer.Option(min=1, help="People browsing at once.")] = 5000,
    think: Annotated[float, typer.Option(min=0, help="Their mean think time, seconds.")] = 5.0,
    ramp: Annotated[float, typer.Option(min=0, help="Seconds over which they arrive.")] = 15.0,
    seconds: Annotated[float, typer.Option(callback=positive, help="Measured seconds after the ramp.")] = 30.0,
    work_dir: Annotated[Path, typer.Option()] = Path(".bench"),
    json_out: JsonOption = False,
) -> None:
    """Locust's FastHttpUser against our aiohttp generator: CPU per request and what each measures."""
    from truelabel_db.bench.generator_compare import run_generator_bench

    doc = run_generator_bench(scale, redis_url, work_dir, users=users, think=think, ramp=ramp, seconds=seconds)
    if json_out:
        emit_json(doc)
    _wide()
    view = Table("generator", "req/s", f"offered {doc['offered_rps']:,.0f}/s", "errors", "p50 ms", "p99 ms",
                 "p99.9 ms", "sent late p99 ms", "CPU s", "CPU ms / request")
    for r in doc["runs"]:
        view.add_row(r["generator"], f"{r['rps']:,.1f}", f"{r['rps'] / doc['offered_rps']:.0%}", str(r["errors"]),
                     _ms(r["p50_ms"]), _ms(r["p99_ms"]), _ms(r["p999_ms"]), _ms(r["late_p99_ms"]),
                     f"{r['cpu_s']:.1f}", f"{r['cpu_ms_per_request']:.3f}")
    err.print(view)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


@bench_app.command("maintenance")
def maintenance_bench(
    scale: Annotated[float, typer.Option(callback=positive, help="Legacy database size.")] = 5.0,
    rate: Annotated[float, typer.Option(
        min=0, help="The app load's rate, operations/s (0: as fast as it can).")] = 300.0,
    seconds: Annotated[float, typer.Option(callback=positive, help="Length of each phase.")] = 10.0,
    work_dir: Annotated[Path, typer.Option()] = Path(".bench"),
    json_out: JsonOption = False,
) -> None:
    """The app's p99 with and without each maintenance job; bloat estimate vs truth; replica lag."""
    from truelabel_db.bench.copy_bench import clean_legacy
    from truelabel_db.bench.maintenance_bench import run_maintenance_bench

    doc = run_maintenance_bench(clean_legacy(work_dir, scale), scale, work_dir.resolve(), rate=rate,
                                seconds=seconds).to_dict()
    if json_out:
        emit_json(doc)
    view = Table("phase", "app ops/s", "p50 ms", "p99 ms", "max ms", "failed", "job runs", "first run s")
    for p in doc["phases"]:
        a = p["app"]
        view.add_row(p["job"] or "no maintenance", f"{a['rate']:,}", f"{a['p50_ms']}", f"{a['p99_ms']}",
                     f"{a['max_ms']}", str(a["failed"]), str(p["job_runs"]), str(p["job_seconds_first"] or "-"))
    err.print(view)
    err.print(f"p99 spread over the runs without maintenance (noise): {doc['p99_noise_ms']} ms")
    bloat = Table("rows deleted", "pgstattuple %", "estimate %", "estimate before delete %", "table MB")
    for b in doc["bloat"]:
        bloat.add_row(f"{b['deleted']:.0%}", str(b["pgstattuple_pct"]), str(b["estimate_pct"]),
                      str(b["estimate_before_delete_pct"]), str(b["table_mb"]))
    err.print(bloat)
    for label, r in doc["replica"].items():
        if isinstance(r, dict):
            err.print(f"replica lag, app {label} ({r['app_rate']:,} ops/s): p50 {r['lag_p50_ms']} ms, "
                      f"p99 {r['lag_p99_ms']} ms, max {r['lag_max_ms']} ms, at most {r['bytes_behind_max']:,} bytes behind")


def _wide() -> None:
    """Benchmark tables have many columns: do not fold them to a pipe's 80 characters."""
    err.width = max(err.width, 170)
