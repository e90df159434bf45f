"""Readable tables for the monitor's reports (people read stderr; ``--json`` is for machines)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.table import Table

from truelabel_db.cli.output import err


def _mb(n: int | float | None) -> str:
    return "-" if n is None else f"{n / 1e6:,.1f}"


def slow_queries(report: Any) -> None:
    if not report.available:
        err.print(f"[yellow]pg_stat_statements is not available[/]: {report.hint}")
        return
    err.print(f"statements since {report.stats_reset} ({report.evicted_entries} evicted entries)")
    if not report.queries:
        err.print("no statement above the threshold")
        return
    view = Table("mean ms", "max ms", "calls", "total ms", "rows", "hit", "query")
    for q in report.queries:
        view.add_row(f"{q.mean_ms:,.1f}", f"{q.max_ms:,.1f}", f"{q.calls:,}", f"{q.total_ms:,.0f}",
                     f"{q.rows:,}", "-" if q.hit_ratio is None else f"{q.hit_ratio:.1%}", q.query[:120])
    err.print(view)


def bloat(rows: list[Any]) -> None:
    if not rows:
        err.print("no table or index with 1 MB of bloat or more")
        return
    view = Table("kind", "relation", "size MB", "bloat MB", "bloat %", "method")
    for b in rows:
        name = f"{b.schema}.{b.table}" + (f" / {b.index}" if b.index else "")
        unknown = b.method == "not_applicable"
        view.add_row(b.kind, name, _mb(b.real_bytes), "?" if unknown else _mb(b.bloat_bytes),
                     "?" if unknown else f"{b.bloat_pct:.1f}", b.method)
    err.print(view)
    if any(b.method == "not_applicable" for b in rows):
        err.print("not_applicable: columns without statistics; CREATE EXTENSION pgstattuple to measure those tables")


def indexes(report: Any) -> None:
    view = Table("index", "table", "scans", "size MB", "flags")
    for u in report.usage[:40]:
        flags = ", ".join(f for f, on in (("unique", u.unique), ("constraint", u.constraint),
                                          ("partition", u.partition), ("INVALID", not u.valid)) if on)
        view.add_row(u.index, f"{u.schema}.{u.table}", f"{u.scans:,}", _mb(u.size_bytes), flags)
    err.print(view)
    err.print(f"statistics cover {report.stats_age_days} day(s)")
    if report.note:
        err.print(f"[yellow]{report.note}[/]")
    elif report.unused:
        err.print("unused: " + ", ".join(report.unused))
    else:
        err.print("no unused index")
    for d in report.duplicates:
        err.print(f"[yellow]{d['why']}[/]: {d['schema']}.{d['index']} is covered by {d['covered_by']}")


def partitions(rows: list[Any]) -> None:
    if not rows:
        err.print("no partitioned table")
        return
    view = Table("table", "partitions", "months ahead", "rows in default", "past retention", "problems")
    for p in rows:
        view.add_row(p.parent, str(p.partitions), str(p.months_ahead), f"{p.default_rows:,}",
                     ", ".join(p.past_retention) or "-", "; ".join(p.problems) or "ok")
    err.print(view)


def cache_hit(report: Any) -> None:
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.2%}"

    err.print(f"cache hit: database {pct(report.database_ratio)}, tables {pct(report.table_ratio)}, "
              f"indexes {pct(report.index_ratio)} (since {report.stats_reset or 'the cluster began'})")


def replication(report: Any) -> None:
    if report.role == "replica":
        err.print(f"this server is a replica; its reads are {report.own_lag_seconds} s behind the primary")
        return
    if not report.replicas:
        err.print("no replica streams from this primary")
    else:
        view = Table("replica", "client", "state", "sync", "lag bytes", "replay lag s", "slot")
        for r in report.replicas:
            view.add_row(r.name, r.client or "local", r.state, r.sync_state,
                         "-" if r.lag_bytes is None else f"{r.lag_bytes:,}",
                         "-" if r.replay_lag_seconds is None else f"{r.replay_lag_seconds:.3f}", r.slot or "-")
        err.print(view)
    if report.slots_inactive:
        err.print(f"[yellow]inactive replication slots (they keep WAL)[/]: {', '.join(report.slots_inactive)}")


def migration_lag(rows: list[Any]) -> None:
    if not rows:
        err.print("no migration follower has run against this database")
        return
    for f in rows:
        err.print(f"follower of {f.source}: position {f.position}, lag {f.lag_ms} ms / {f.lag_rows} rows, "
                  f"last apply {f.seconds_since_apply} s ago")


def maintenance(rows: list[Any]) -> None:
    if not rows:
        err.print("no maintenance job has run against this database")
        return
    view = Table("job", "last run", "started", "since last success s", "failures (24 h)")
    for j in rows:
        view.add_row(j.job, j.last_status, j.last_started[:19],
                     "-" if j.seconds_since_success is None else f"{j.seconds_since_success:,.0f}",
                     str(j.failures_last_day))
    err.print(view)


RENDERERS: dict[str, Callable[[Any], None]] = {
    "slow-queries": slow_queries, "bloat": bloat, "indexes": indexes, "partitions": partitions,
    "cache-hit": cache_hit, "replication": replication, "migration-lag": migration_lag,
    "maintenance": maintenance,
}
