"""The workload that plays the app: seeded, replayable, every kind of write, both connections.

Each test runs real writer processes against a real SQLite file (and, where it says so, the
real PostgreSQL and Redis). Nothing is timed: a test waits for what it needs to see, with a
generous deadline only so that a broken run fails instead of hanging.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import psycopg
import pytest

from tests.fix_cli import run_cli
from tests.fix_compare import differences
from truelabel_db.client import AppGate
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.cutover.fence import install_fence
from truelabel_db.cutover.gate import Gate, connect_redis
from truelabel_db.embedded import free_port
from truelabel_db.errors import ConfigError, ExitCode, SourceError
from truelabel_db.legacy.generator import generate
from truelabel_db.workload import (
    KINDS,
    WorkloadFailed,
    WorkloadHandle,
    WorkloadOptions,
    read_log,
    run_workload,
    start_workload,
    stream,
)
from truelabel_db.workload.postgres_target import PostgresTarget
from truelabel_db.workload.sqlite_target import SqliteTarget
from truelabel_db.workload.statements import Delete, Insert, Unit, Update
from truelabel_db.workload.target import Refused

FAST = {"synchronous": "off"}  # durability is not under test; the disk is slow


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("workload") / "generated.db"
    generate(path, 0.01, seed=11)
    return path


@pytest.fixture
def legacy(generated: Path, tmp_path: Path) -> Callable[[str], Path]:
    """A factory: a fresh copy of the generated (clean) legacy file."""
    def make(name: str = "legacy.db") -> Path:
        path = tmp_path / name
        shutil.copyfile(generated, path)
        return path
    return make


def _log(directory: Path, seed: int, writer: int = 0) -> list[dict[str, object]]:
    return list(read_log(directory / f"workload-seed{seed}-writer{writer}.jsonl"))


@contextmanager
def _sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def _integrity(path: Path) -> str:
    with _sqlite(path) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def _orphans(path: Path) -> list[tuple[object, ...]]:
    with _sqlite(path) as conn:
        return conn.execute("PRAGMA foreign_key_check").fetchall()


def _wait_for(condition: Callable[[], bool], what: str, limit_s: float = 120.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw: {what}")
        time.sleep(0.02)


# Determinism ------------------------------------------------------------------------------------

def test_the_same_seed_writes_the_same_operation_log(legacy: Callable[[str], Path], tmp_path: Path) -> None:
    runs = []
    for name in ("first", "second"):
        options = WorkloadOptions(seed=42, operations=300, dirt_rate=0.05, log_dir=tmp_path / name, **FAST)
        summary = run_workload(legacy(f"{name}.db"), options)
        assert summary.ok and summary.operations == 300
        runs.append(_log(tmp_path / name, 42))
    assert runs[0] == runs[1]  # one writer: the outcomes too are the same
    other = WorkloadOptions(seed=43, operations=300, log_dir=tmp_path / "other", **FAST)
    run_workload(legacy("other.db"), other)
    assert stream(_log(tmp_path / "other", 43)) != stream(runs[0])


def test_each_writer_replays_its_own_stream_however_writers_interleave(
        legacy: Callable[[str], Path], tmp_path: Path) -> None:
    for name in ("first", "second"):
        options = WorkloadOptions(seed=7, processes=3, operations=300, log_dir=tmp_path / name, **FAST)
        summary = run_workload(legacy(f"{name}.db"), options)
        assert summary.ok and summary.operations == 300 and len(summary.logs) == 3
    for writer in range(3):
        first, second = _log(tmp_path / "first", 7, writer), _log(tmp_path / "second", 7, writer)
        assert len(first) == 100
        assert stream(first) == stream(second)
    assert stream(_log(tmp_path / "first", 7, 0)) != stream(_log(tmp_path / "first", 7, 1))


# What it writes ---------------------------------------------------------------------------------

def test_every_operation_kind_occurs_and_the_file_stays_valid(legacy: Callable[[str], Path],
                                                              tmp_path: Path) -> None:
    path = legacy("all.db")
    summary = run_workload(path, WorkloadOptions(seed=3, operations=1500, log_dir=tmp_path, **FAST))
    assert summary.ok, summary.errors
    assert set(summary.by_kind) == KINDS
    assert summary.committed > 0.8 * summary.operations
    assert {"foreign_key", "unique"} <= set(summary.refused)  # app errors the workload expects
    assert summary.fk_on and summary.fk_off
    assert _integrity(path) == "ok"
    lines = _log(tmp_path, 3)
    written = {s.get("insert") or s.get("update") or s.get("delete")
               for line in lines for unit in line["units"] for s in unit}  # type: ignore[union-attr]
    assert written >= {"users", "laboratories", "products", "reports", "validations", "product_seals",
                       "qr_code_accesses", "validation_queue", "validation_queue_history", "analytics_events"}
    shapes = {key for line in lines for unit in line["units"] for s in unit for key in s}  # type: ignore[union-attr]
    assert {"upsert", "or_replace"} <= shapes
    nested = [line for line in lines if line["kind"] == "create_product"]
    assert all(len(line["units"]) == 1 and len(line["units"][0]) >= 3 for line in nested)  # type: ignore[arg-type]
    one_by_one = next(line for line in lines if line["kind"] == "delete_product_each")
    assert [len(u) for u in one_by_one["units"]] == [1, 1, 1, 1, 1]  # type: ignore[union-attr]


def test_app_connections_never_leave_orphans(legacy: Callable[[str], Path]) -> None:
    path = legacy()
    assert _orphans(path) == []
    summary = run_workload(path, WorkloadOptions(seed=5, operations=1200, fk_on_share=1.0, **FAST))
    assert summary.ok and summary.fk_off == 0
    assert summary.refused["foreign_key"] > 0  # RESTRICT said no, and the orphan inserts were refused
    assert _orphans(path) == []
    assert _integrity(path) == "ok"


def test_script_connections_leave_orphans(legacy: Callable[[str], Path]) -> None:
    path = legacy()
    summary = run_workload(path, WorkloadOptions(seed=5, operations=600, fk_on_share=0.0, **FAST))
    assert summary.ok and summary.fk_on == 0
    orphaned_tables = {row[0] for row in _orphans(path)}
    assert orphaned_tables & {"product_seals", "validations", "validation_queue", "validation_queue_history"}
    assert _integrity(path) == "ok"


def test_the_schema_referential_actions_apply_on_app_connections(legacy: Callable[[str], Path]) -> None:
    """SET NULL (a report withdrawn), CASCADE (a queue entry cancelled), RESTRICT (a product with
    validations deleted alone): each as SQLite declares it, because the app sets foreign keys on."""
    path = legacy()
    with _sqlite(path) as conn:
        cited = conn.execute('SELECT count(*) FROM validations WHERE "reportId" IS NOT NULL').fetchone()[0]
    weights = {kind: 0.0 for kind in KINDS} | {"delete_report": 1.0, "delete_queue_entry": 1.0,
                                                "delete_product_only": 1.0}
    summary = run_workload(path, WorkloadOptions(seed=9, operations=150, fk_on_share=1.0, weights=weights,
                                                 **FAST))
    assert summary.ok
    assert summary.by_kind["delete_product_only"]["refused"] > 0
    with _sqlite(path) as conn:
        assert conn.execute('SELECT count(*) FROM validations WHERE "reportId" IS NOT NULL').fetchone()[0] < cited
    assert _orphans(path) == []


def test_dirty_values_are_off_by_default_and_written_when_asked(legacy: Callable[[str], Path],
                                                                 tmp_path: Path) -> None:
    clean = run_workload(legacy("clean.db"), WorkloadOptions(seed=2, operations=300, **FAST))
    assert not clean.dirty_values
    path = legacy("dirty.db")
    dirty = run_workload(path, WorkloadOptions(seed=2, operations=300, dirt_rate=0.5, log_dir=tmp_path, **FAST))
    assert dirty.ok and sum(dirty.dirty_values.values()) > 20
    soiled = [s for line in _log(tmp_path, 2) if line["outcome"] == "committed"
              for unit in line["units"] for s in unit if "dirt" in s]  # type: ignore[union-attr]
    text_stamps = [s for s in soiled if s.get("insert") == "qr_code_accesses"
                   and s["dirt"].get("accessedAt", [None])[0] == "ts_epoch_seconds"]
    if text_stamps:
        key = text_stamps[0]["values"]["id"]
        with _sqlite(path) as conn:
            stored = conn.execute('SELECT "accessedAt" FROM qr_code_accesses WHERE id = ?', (key,)).fetchone()
        assert stored is None or stored[0] < 10**11  # seconds, not Prisma's milliseconds
    assert _integrity(path) == "ok"


# Processes, journal modes, locks ------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_several_writers_in_either_journal_mode(legacy: Callable[[str], Path], mode: str) -> None:
    path = legacy()
    summary = run_workload(path, WorkloadOptions(seed=4, processes=3, operations=450, journal_mode=mode))
    assert summary.ok, summary.errors
    assert summary.operations == 450 and summary.processes == 3
    with _sqlite(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == mode
    assert _integrity(path) == "ok"


def test_a_locked_database_is_retried_not_a_crash(legacy: Callable[[str], Path]) -> None:
    path = legacy()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    options = WorkloadOptions(seed=6, operations=40, busy_timeout_ms=50, **FAST)
    with start_workload(path, options) as run:
        _wait_for(lambda: run.progress()["lock_retries"] >= 3, "a writer retrying the lock")
        assert run.progress()["done"] == 0
        blocker.execute("ROLLBACK")
        summary = run.join()
    blocker.close()
    assert summary.ok and summary.operations == 40
    assert summary.lock_retries >= 3


def test_a_run_stopped_while_locked_out_reports_the_operation_as_stopped(
        legacy: Callable[[str], Path]) -> None:
    path = legacy()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with start_workload(path, WorkloadOptions(seed=6, operations=40, busy_timeout_ms=20, **FAST)) as run:
            _wait_for(lambda: run.progress()["lock_retries"] >= 1, "a writer retrying the lock")
            run.stop()
            summary = run.join()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert summary.ok and summary.outcomes == {"stopped": 1} and summary.operations == 1


def test_a_background_run_stops_when_asked(legacy: Callable[[str], Path]) -> None:
    path = legacy()
    run: WorkloadHandle = start_workload(path, WorkloadOptions(seed=8, processes=2, rate=200, **FAST))
    _wait_for(lambda: run.progress()["done"] >= 20, "twenty operations")
    run.stop()
    summary = run.join()
    assert summary.ok and summary.operations >= 20 and not run.running
    assert summary.committed + summary.outcomes["refused"] == summary.operations


# The gate, the fence, PostgreSQL ----------------------------------------------------------------

def test_writers_hold_while_the_gate_is_up(legacy: Callable[[str], Path], redis_url: str) -> None:
    path = legacy()
    gate = Gate(connect_redis(redis_url))
    gate.raise_()
    with _sqlite(path) as conn:
        before = _row_counts(conn)
    options = WorkloadOptions(seed=1, processes=2, operations=60, **FAST)
    with start_workload(path, options, gate=partial(AppGate, redis_url=redis_url)) as run:
        _wait_for(lambda: run.progress()["gate_holds"] >= 2, "both writers held at the gate")
        assert run.progress()["done"] == 0
        with _sqlite(path) as conn:
            assert _row_counts(conn) == before
        gate.lower()
        summary = run.join()
    assert summary.ok and summary.operations == 60 and summary.gate_waits >= 2


def test_an_unreachable_gate_fails_the_write_not_the_writer(legacy: Callable[[str], Path]) -> None:
    """The app's answer when Redis is down is to fail the write, not to risk it; the writer goes on."""
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    summary = run_workload(legacy(), WorkloadOptions(seed=1, operations=5, **FAST),
                           gate=partial(AppGate, redis_url=nowhere))
    assert not summary.failures and summary.outcomes == {"error": 5}
    assert all("gate" in error for error in summary.errors)
    with pytest.raises(WorkloadFailed, match="5 operation"):
        summary.raise_for_failure()


def _row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def test_a_fenced_file_refuses_a_writer_that_has_no_gate(legacy: Callable[[str], Path]) -> None:
    path = legacy()
    install_fence(path)
    summary = run_workload(path, WorkloadOptions(seed=1, operations=30, **FAST))
    assert summary.ok
    assert summary.refused == {"fenced": 30} and summary.committed == 0


def test_writes_move_to_postgresql_when_it_becomes_the_primary(
        legacy: Callable[[str], Path], pg_url: str, redis_url: str, tmp_path: Path) -> None:
    """Fenced SQLite, gate down: the writers retry until the primary says PostgreSQL, then
    write there, through the mapping (a cutover in miniature)."""
    path = legacy()
    run_copy(path, pg_url, CopyOptions(work_dir=tmp_path / "copy", workers=1))
    install_fence(path)
    gate = Gate(connect_redis(redis_url))
    gate.publish_primary("sqlite", str(path))
    options = WorkloadOptions(seed=12, operations=80, postgres_url=pg_url, **FAST)
    with start_workload(path, options, gate=partial(AppGate, redis_url=redis_url)) as run:
        _wait_for(lambda: run.progress()["fence_retries"] > 0, "a writer fenced off SQLite")
        gate.publish_primary("postgresql", "the test database")
        summary = run.join()
    assert summary.ok, summary.errors
    assert summary.targets.keys() == {"postgresql"} and summary.fence_retries > 0
    assert summary.committed > 60


# Known divergences of the target schema from Prisma's referential actions (see the report).
_DIVERGENT = {"rekey_laboratory": 0.0, "delete_user": 0.0}


def test_postgresql_ends_equal_to_sqlite_after_the_same_operations(
        legacy: Callable[[str], Path], pg_url: str, tmp_path: Path) -> None:
    """The same seed against SQLite (app connections) and against PostgreSQL after a copy of the
    same file: every operation has the same outcome and both databases end equal."""
    source, twin = legacy("source.db"), legacy("twin.db")
    run_copy(source, pg_url, CopyOptions(work_dir=tmp_path / "copy", workers=1))
    common = dict(seed=21, operations=800, fk_on_share=1.0, weights=_DIVERGENT, **FAST)
    on_sqlite = run_workload(twin, WorkloadOptions(log_dir=tmp_path / "sqlite", **common))
    on_postgres = run_workload(source, WorkloadOptions(log_dir=tmp_path / "pg", target="postgresql",
                                                       postgres_url=pg_url, **common))
    assert on_sqlite.ok and on_postgres.ok, on_postgres.errors
    assert on_postgres.targets.keys() == {"postgresql"}
    outcomes = [[(line["outcome"], line["rows"]) for line in _log(tmp_path / side, 21)] for side in ("sqlite", "pg")]
    assert outcomes[0] == outcomes[1]
    with psycopg.connect(pg_url) as pg:
        assert differences(twin, pg) == {}


def _outcome(target: SqliteTarget | PostgresTarget, units: list[Unit]) -> list[object]:
    """What each unit did on ``target``: its row counts, or the reason it was refused."""
    out: list[object] = []
    for unit in units:
        try:
            out.append(target.run_unit(unit, fk_on=True))
        except Refused as refusal:
            out.append(refusal.reason)
    target.close()
    return out


def _on_both(legacy: Callable[[str], Path], pg_url: str, tmp_path: Path,
             plan: Callable[[sqlite3.Connection], list[Unit]]) -> tuple[list[object], list[object]]:
    path = legacy()
    run_copy(path, pg_url, CopyOptions(work_dir=tmp_path / "copy", workers=1))
    with _sqlite(path) as conn:
        units = plan(conn)
    return _outcome(SqliteTarget(path, 1000), units), _outcome(PostgresTarget(pg_url), units)


def test_a_laboratory_id_change_cascades_to_its_reports_in_postgresql_too(
        legacy: Callable[[str], Path], pg_url: str, tmp_path: Path) -> None:
    def plan(conn: sqlite3.Connection) -> list[Unit]:
        lab = conn.execute('SELECT "laboratoryId" FROM reports LIMIT 1').fetchone()[0]
        return [(Update("laboratories", {"id": str(uuid.uuid4())}, {"id": lab}),)]

    on_sqlite, on_postgres = _on_both(legacy, pg_url, tmp_path, plan)
    assert on_sqlite == [[1]]
    assert on_postgres == on_sqlite


def test_deleting_a_user_who_owns_products_is_refused_in_postgresql_too(
        legacy: Callable[[str], Path], pg_url: str, tmp_path: Path) -> None:
    def plan(conn: sqlite3.Connection) -> list[Unit]:
        owner, product = str(uuid.uuid4()), str(uuid.uuid4())
        return [(Insert("users", {"id": owner, "email": f"{owner}@x.com", "password": "x", "name": "Dona",
                                  "role": "BRAND", "createdAt": 1_790_000_000_000, "updatedAt": 1_790_000_000_000}),
                 Insert("products", {"id": product, "name": "Granola", "brand": "Vida", "category": "Alimentos",
                                     "sku": f"SKU-{product}", "status": "DRAFT", "createdAt": 1_790_000_000_000,
                                     "updatedAt": 1_790_000_000_000, "userId": owner})),
                (Delete("users", {"id": owner}),)]

    on_sqlite, on_postgres = _on_both(legacy, pg_url, tmp_path, plan)
    assert on_sqlite == [[1, 1], "foreign_key"]
    assert on_postgres == on_sqlite


# Bad input ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("options, message", [
    (WorkloadOptions(processes=0, operations=1), "--processes"),
    (WorkloadOptions(fk_on_share=1.5, operations=1), "--fk-on-share"),
    (WorkloadOptions(journal_mode="truncate", operations=1), "--journal-mode"),
    (WorkloadOptions(weights={"teleport": 1.0}, operations=1), "teleport"),
    (WorkloadOptions(target="postgresql", operations=1), "URL"),
    (WorkloadOptions(), "an end"),
])
def test_options_that_cannot_run_are_refused_in_one_line(legacy: Callable[[str], Path],
                                                         options: WorkloadOptions, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        run_workload(legacy(), options)


def test_a_file_that_is_not_true_labels_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with _sqlite(other) as conn:
        conn.execute("CREATE TABLE notes (id TEXT)")
    with pytest.raises(SourceError, match="missing tables"):
        run_workload(other, WorkloadOptions(operations=1))
    with pytest.raises(SourceError, match="not found"):
        run_workload(tmp_path / "missing.db", WorkloadOptions(operations=1))


def test_the_summary_is_json(legacy: Callable[[str], Path]) -> None:
    summary = run_workload(legacy(), WorkloadOptions(seed=1, operations=50, **FAST))
    data = json.loads(json.dumps(summary.to_dict()))
    assert data["operations"] == 50 and data["outcomes"]["error"] == 0


# The command ------------------------------------------------------------------------------------

def test_the_command_runs_a_seeded_workload(legacy: Callable[[str], Path], tmp_path: Path) -> None:
    path = legacy()
    result = run_cli("workload", "--source", str(path), "--seed", "3", "--operations", "60", "--processes", "2",
                     "--synchronous", "off", "--mix", "scan_qr=50", "--log-dir", str(tmp_path), "--json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["operations"] == 60 and summary["seed"] == 3 and len(summary["logs"]) == 2
    assert summary["outcomes"]["error"] == 0


@pytest.mark.parametrize("args, code, message", [
    (["--source", "missing.db", "--operations", "5"], ExitCode.SOURCE, "not found"),
    (["--operations", "5", "--mix", "scan_qr"], ExitCode.CONFIG, "KIND=WEIGHT"),
    (["--operations", "5", "--gate"], ExitCode.CONFIG, "--gate needs"),
    (["--operations", "5", "--journal-mode", "memory"], ExitCode.CONFIG, "--journal-mode"),
])
def test_the_command_refuses_bad_input_in_one_line(legacy: Callable[[str], Path], args: list[str],
                                                   code: int, message: str) -> None:
    if "--source" not in args:
        args = ["--source", str(legacy()), *args]
    result = run_cli("workload", *args, env={"TRUELABEL_REDIS_URL": ""})
    assert result.code == code
    assert message in result.stderr and "Traceback" not in result.stderr
