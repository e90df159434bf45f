"""The initial copy, end to end: snapshot → plan → parallel load → post-data → reconcile.

Each stage records itself in ``truelabel_meta`` so that running the same command again after
a crash resumes where the last run stopped, from the same snapshot, with nothing loaded twice.
"""

from __future__ import annotations

import threading
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db import guard
from truelabel_db.catalog import changelog, quarantine
from truelabel_db.catalog import copy_runs as catalog
from truelabel_db.catalog.copy_runs import CopyRun
from truelabel_db.copy import finalize
from truelabel_db.copy.reader import table_bounds
from truelabel_db.copy.scheduler import ANALYZE, INDEX, KEYS, Scheduler, Task
from truelabel_db.copy.worker import ChunkCopier, QueryBook, worker_connections
from truelabel_db.errors import (
    ConfigError,
    ReconciliationError,
    SourceError,
    TargetNotEmptyError,
)
from truelabel_db.legacy import source as legacy_source
from truelabel_db.legacy.schema import read_schema
from truelabel_db.postgres import connect, one
from truelabel_db.private import private_folder
from truelabel_db.progress import ProgressSink, SilentProgress
from truelabel_db.schema.ddl import apply_schema
from truelabel_db.schema.drift import MappingDecision, UnmappedPolicy, decide, effective_mapping, target_ddl
from truelabel_db.schema.mapping import Mapping
from truelabel_db.sqlite_sql import quote_ident

ORPHAN_POLICIES = ("quarantine", "keep")


@dataclass(frozen=True)
class CopyOptions:
    workers: int = 4
    batch_size: int = 10_000
    work_dir: Path = Path(".truelabel")
    truncate: bool = False
    resume: bool = True
    orphan_policy: str = "quarantine"
    keep_snapshot: bool = False
    in_place: bool = False
    unmapped: UnmappedPolicy | None = None  # None: as capture recorded it, else refuse

    def check(self) -> None:
        if self.workers < 1:
            raise ConfigError("--workers must be at least 1")
        if self.batch_size < 1:
            raise ConfigError("--batch-size must be at least 1")
        if self.orphan_policy not in ORPHAN_POLICIES:
            raise ConfigError(f"--orphans must be one of {', '.join(ORPHAN_POLICIES)}")


@dataclass
class TableSummary:
    read: int
    written: int
    quarantined: int
    repaired: int
    kept_orphans: int = 0
    slow_chunks: int = 0

    @property
    def reconciled(self) -> bool:
        return self.read == self.written + self.quarantined


@dataclass
class CopyResult:
    run_id: int
    resumed: bool
    tables: dict[str, TableSummary]
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    repairs: dict[str, int] = field(default_factory=dict)
    mapping: MappingDecision = field(default_factory=MappingDecision)

    @property
    def totals(self) -> TableSummary:
        t = TableSummary(0, 0, 0, 0)
        for s in self.tables.values():
            t.read += s.read
            t.written += s.written
            t.quarantined += s.quarantined
            t.repaired += s.repaired
            t.kept_orphans += s.kept_orphans
            t.slow_chunks += s.slow_chunks
        return t

    @property
    def reconciled(self) -> bool:
        return all(s.reconciled for s in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        def row(s: TableSummary) -> dict[str, Any]:
            return {**asdict(s), "reconciled": s.reconciled}
        return {"run_id": self.run_id, "resumed": self.resumed, "seconds": round(self.seconds, 3),
                "tables": {name: row(s) for name, s in self.tables.items()},
                "totals": {**row(self.totals), "rows_per_second": self.rows_per_second},
                "reconciled": self.reconciled, "steps": self.steps, "skipped": self.skipped,
                "repairs": self.repairs, "drift": {**self.mapping.to_json(), "summary": self.mapping.summary()}}

    @property
    def rows_per_second(self) -> float:
        return round(self.totals.read / self.seconds, 1) if self.seconds else 0.0


def run_copy(source: Path, target_url: str, options: CopyOptions = CopyOptions(),
             progress: ProgressSink | None = None) -> CopyResult:
    """Copy the legacy file into the optimized schema; raise unless every row is accounted for."""
    options.check()
    progress = progress or SilentProgress()
    started = time.perf_counter()
    steps: dict[str, float] = {}
    with connect(target_url, autocommit=True, migration_writer=True) as conn:
        apply_schema(conn, phases=("pre",))
        resumable = catalog.unfinished_run(conn)
        decision = (MappingDecision.from_json(resumable.options.get("mapping"))
                    if resumable is not None and _resuming(resumable, options)
                    else decide_for(source, options.unmapped))
        mapping = effective_mapping(decision)
        for statement in target_ddl(mapping):
            conn.execute(statement)
        run, resumed = _start_or_resume(conn, source, options, progress, steps, mapping, decision)
    for line in decision.summary():
        progress.note(line)
    snapshot = Path(run.snapshot_path)
    in_place = bool(run.options.get("in_place"))
    with legacy_source.frozen(snapshot) if in_place else nullcontext():
        if not resumed:
            with connect(target_url, autocommit=True, migration_writer=True) as conn:
                _record_changelog_position(conn, run, snapshot, progress)
                finalize.drop_post_data(conn, mapping)
                _ensure_partitions(conn, snapshot, mapping)
                catalog.plan_chunks(conn, run.run_id, _bounds(snapshot, mapping), options.batch_size)
        repairs, skipped = _load(run, target_url, options, progress, steps, mapping)
        _post_data(run, target_url, options, progress, steps, mapping)
    result = _reconcile(run, target_url, resumed, repairs, skipped, steps, mapping)
    result.mapping = decision
    result.seconds = time.perf_counter() - started
    if not result.reconciled:
        raise ReconciliationError(_mismatch_message(result))
    with connect(target_url, autocommit=True, migration_writer=True) as conn:
        catalog.finish_run(conn, run.run_id)
    if not options.keep_snapshot and not in_place:
        legacy_source.remove_snapshot(snapshot)
    return result


def _resuming(run: CopyRun | None, options: CopyOptions) -> bool:
    return bool(run and options.resume and not options.truncate and Path(run.snapshot_path).exists())


def decide_for(source: Path, policy: UnmappedPolicy | None) -> MappingDecision:
    """The drift decision for ``source``: the policy given, else the one capture recorded, else refuse."""
    with legacy_source.reading(source) as legacy:
        recorded = changelog.setting(legacy, "unmapped")
        chosen = policy or (UnmappedPolicy.from_json(recorded) if recorded else UnmappedPolicy())
        if policy and recorded and UnmappedPolicy.from_json(recorded) != policy:
            raise ConfigError(f"capture was installed with --unmapped {UnmappedPolicy.from_json(recorded).describe()}; "
                              f"copy with the same (not {policy.describe()})")
        return decide(legacy, read_schema(legacy), chosen, name=str(source))


def _start_or_resume(conn: psycopg.Connection, source: Path, options: CopyOptions, progress: ProgressSink,
                     steps: dict[str, float], mapping: Mapping, decision: MappingDecision) -> tuple[CopyRun, bool]:
    run = catalog.unfinished_run(conn)
    if run and _resuming(run, options):
        if run.options.get("in_place") and legacy_source.fingerprint(source).describe() != run.source_fingerprint:
            raise SourceError(f"{source} changed since the interrupted in-place copy; "
                              "pass --truncate to start over")
        progress.note(f"resuming copy run {run.run_id} from its snapshot")
        return run, True
    if run is not None:
        _discard_snapshot(run, source)
    busy = _non_empty_tables(conn, mapping)
    if busy and not options.truncate:
        raise TargetNotEmptyError(
            f"target already holds rows ({', '.join(busy[:4])}{'...' if len(busy) > 4 else ''}); "
            "pass --truncate to empty the application tables and copy again")
    if busy:
        _truncate(conn, mapping)
    fp = legacy_source.fingerprint(source).describe()
    opts = {"workers": options.workers, "batch_size": options.batch_size,
            "orphan_policy": options.orphan_policy, "in_place": options.in_place, "mapping": decision.to_json()}
    if options.in_place:
        legacy_source.require_rollback_journal(source)
        return catalog.create_run(conn, str(source.resolve()), fp, str(source.resolve()), opts), False
    t0 = time.perf_counter()
    private_folder(options.work_dir)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    snapshot = (options.work_dir / f"snapshot-{stamp}.db").resolve()
    legacy_source.take_snapshot(source, snapshot)
    steps["snapshot"] = round(time.perf_counter() - t0, 3)
    progress.note(f"snapshot of {source} taken in {steps['snapshot']:.2f}s")
    return catalog.create_run(conn, str(source.resolve()), fp, str(snapshot), opts), False


def _discard_snapshot(run: CopyRun, source: Path) -> None:
    """A run that will never be resumed no longer needs its snapshot, a copy of production data.
    An in-place run's "snapshot" is the legacy file itself: never that."""
    snapshot = Path(run.snapshot_path)
    ours = snapshot.name.startswith("snapshot-") and snapshot.resolve() != source.resolve()
    if run.options.get("in_place") or not ours:
        return
    legacy_source.remove_snapshot(snapshot)


def _record_changelog_position(conn: psycopg.Connection, run: CopyRun, snapshot: Path,
                               progress: ProgressSink) -> None:
    """Where the changelog stood in the snapshot: the follower starts exactly after it."""
    with legacy_source.reading(snapshot) as legacy:
        position = changelog.position_in_snapshot(legacy)
    catalog.set_changelog_position(conn, run.run_id, position)
    if position is None:
        progress.note("no change capture in the legacy file: this copy cannot be followed "
                      "(run `truelabel-db capture install` before copying a live database)")


def _non_empty_tables(conn: psycopg.Connection, mapping: Mapping) -> list[str]:
    return [t.qualified for t in mapping.tables if one(conn.execute(
        sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(t.ident)))[0]]


def _truncate(conn: psycopg.Connection, mapping: Mapping) -> None:
    guard.no_postgres_primary(conn, "copy --truncate")
    with conn.transaction():
        conn.execute(sql.SQL("TRUNCATE {} CASCADE").format(
            sql.SQL(", ").join(t.ident for t in mapping.tables)))
        quarantine.resolve_all(conn, "superseded by a new copy")


def _bounds(snapshot: Path, mapping: Mapping) -> dict[str, tuple[int, int, int]]:
    with legacy_source.reading(snapshot) as conn:
        return {t.legacy: table_bounds(conn, t) for t in mapping.tables}


def _ensure_partitions(conn: psycopg.Connection, snapshot: Path, mapping: Mapping) -> None:
    """Monthly partitions for every month the data spans, and the next three months."""
    with legacy_source.reading(snapshot) as legacy:
        for table in mapping.tables:
            if not table.partitioned_by:
                continue
            column = quote_ident(table.column_for_target(table.partitioned_by).legacy)
            low, high = legacy.execute(
                f"SELECT min({column}), max({column}) FROM {quote_ident(table.legacy)} "
                f"WHERE typeof({column}) = 'integer' AND {column} BETWEEN ? AND ?",
                (31_536_000_000, 7_258_118_400_000)).fetchone()
            now_ms = int(time.time() * 1000)
            low = min(low or now_ms, now_ms - 31 * 86_400_000)
            high = max(high or now_ms, now_ms + 92 * 86_400_000)
            conn.execute("SELECT truelabel_meta.ensure_month_partitions(%s::regclass, "
                         "to_timestamp(%s / 1000.0), to_timestamp(%s / 1000.0))",
                         (table.target, low, high))


def _load(run: CopyRun, url: str, options: CopyOptions, progress: ProgressSink,
          steps: dict[str, float], mapping: Mapping) -> tuple[dict[str, int], list[str]]:
    """Run every pending chunk and every unfinished table on ``workers`` threads."""
    t0 = time.perf_counter()
    snapshot = Path(run.snapshot_path)
    with connect(url, autocommit=True, migration_writer=True) as conn:
        pending = catalog.pending_chunks(conn, run.run_id)
        done = catalog.chunk_totals(conn, run.run_id)
        unfinished = [t.legacy for t in mapping.tables
                      if not catalog.step_done(conn, run.run_id, f"table:{t.legacy}")]
        indexes = finalize.IndexPlan.for_server({r[0] for r in conn.execute("SELECT extname FROM pg_extension")})
    rows = {name: bounds[0] for name, bounds in _bounds(snapshot, mapping).items()}
    for table in mapping.tables:
        progress.table_started(table.legacy, rows[table.legacy])
        if done.get(table.legacy, {}).get("read", 0):
            progress.advance(table.legacy, done[table.legacy]["read"])
    scheduler = Scheduler(pending, unfinished, rows,
                          {t.legacy: indexes.by_table.get(t.target, []) if t.target_schema == "public" else []
                           for t in mapping.tables})
    repairs: dict[str, int] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()
    queries = QueryBook.for_tables(list(mapping.tables))
    by_legacy = mapping.by_legacy

    def work(copier: ChunkCopier, task: Task) -> None:
        table = by_legacy[task.table]
        if task.kind == KEYS:
            finalize.add_keys(copier.pg, snapshot, run.run_id, table)
            return
        if task.kind == INDEX:
            finalize.build_index(copier.pg, str(task.statement))
            return
        if task.kind == ANALYZE:
            finalize.analyze(copier.pg, table)
            catalog.record_step(copier.pg, run.run_id, f"table:{task.table}")
            return
        assert task.chunk is not None
        outcome = copier.copy(table, task.chunk)
        progress.advance(task.table, outcome.stats.read)
        with lock:
            for note, n in outcome.repairs.items():
                key = f"{task.table}.{note}"
                repairs[key] = repairs.get(key, 0) + n

    def worker() -> None:
        sqlite_conn, pg_conn = worker_connections(snapshot, url)
        copier = ChunkCopier(sqlite_conn, pg_conn, run.run_id, queries)
        try:
            while (task := scheduler.next()) is not None:
                work(copier, task)
                scheduler.done(task)
        except BaseException as exc:  # re-raised in the caller's thread below
            errors.append(exc)
            scheduler.fail()
        finally:
            sqlite_conn.close()
            pg_conn.close()

    threads = [threading.Thread(target=worker, name=f"copy-{i}", daemon=True)
               for i in range(options.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    progress.close()
    if errors:
        raise errors[0]
    steps["load_keys_indexes"] = round(time.perf_counter() - t0, 3)
    with connect(url, autocommit=True, migration_writer=True) as conn:
        finalize.record_versions(conn, indexes.files)
    progress.note(f"{len(mapping.tables)} tables loaded, keyed, indexed and analyzed")
    return repairs, indexes.skipped


def _post_data(run: CopyRun, url: str, options: CopyOptions, progress: ProgressSink,
               steps: dict[str, float], mapping: Mapping) -> None:
    """What needs every table loaded: foreign keys (parents first), the dashboard view, then the
    cache's change triggers (after the load, so that the copy fires none)."""
    snapshot = Path(run.snapshot_path)
    with connect(url, autocommit=True, migration_writer=True) as conn:
        for step, action in (
            ("foreign_keys", lambda: finalize.add_foreign_keys(
                conn, snapshot, run.run_id, options.orphan_policy, progress.note, mapping)),
            ("dashboard", lambda: finalize.build_dashboard(conn, progress.note)),
            ("cache_events", lambda: finalize.attach_cache_events(conn, progress.note)),
        ):
            if catalog.step_done(conn, run.run_id, step):
                continue
            t0 = time.perf_counter()
            detail = action()
            steps[step] = round(time.perf_counter() - t0, 3)
            catalog.record_step(conn, run.run_id, step,
                                {"result": detail} if isinstance(detail, dict) else {})


def _reconcile(run: CopyRun, url: str, resumed: bool, repairs: dict[str, int],
               skipped: list[str], steps: dict[str, float], mapping: Mapping) -> CopyResult:
    with connect(url, autocommit=True, migration_writer=True) as conn:
        totals = catalog.chunk_totals(conn, run.run_id)
        quarantined = quarantine.open_counts(conn, run.run_id)
        written = finalize.target_counts(conn, mapping)
        fk_detail = catalog.step_detail(conn, run.run_id, "foreign_keys")
    kept = (fk_detail or {}).get("result", {}) if run.options.get("orphan_policy") == "keep" else {}
    tables = {
        t.legacy: TableSummary(
            read=totals.get(t.legacy, {}).get("read", 0), written=written[t.legacy],
            quarantined=quarantined.get(t.legacy, 0),
            repaired=totals.get(t.legacy, {}).get("repaired", 0),
            kept_orphans=int(kept.get(t.legacy, 0)),
            slow_chunks=totals.get(t.legacy, {}).get("slow_chunks", 0))
        for t in mapping.tables}
    return CopyResult(run.run_id, resumed, tables, 0.0, steps, skipped, repairs)


def _mismatch_message(result: CopyResult) -> str:
    bad = [f"{name}: read {s.read} != written {s.written} + quarantined {s.quarantined}"
           for name, s in result.tables.items() if not s.reconciled]
    return "counts do not reconcile: " + "; ".join(bad)


__all__ = ["CopyOptions", "CopyResult", "TableSummary", "run_copy"]
