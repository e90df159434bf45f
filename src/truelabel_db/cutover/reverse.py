"""After cutover: PostgreSQL's changes captured, and replayed into SQLite by a rollback.

The mirror of capture and follow. Triggers on every target table record which rows the app
changed. ``rollback`` raises the gate, waits a grace period for writes that had passed it, then
fences PostgreSQL (creating the fence waits for writes in flight and admits none after, so the
reverse changelog is complete), and replays it into SQLite batch by batch, each batch under
SQLite's write lock of its own, through each transform's reverse (``to_legacy``: timestamps
back to epoch ms, LABORATORY back to LAB, arrays back to comma lists). A batch is trimmed from
the reverse changelog only once SQLite has committed it, so a rollback killed at any moment
replays again from where it stopped. Then SQLite is recorded and published as the primary, its
fence lifted, and the gate lowered; PostgreSQL keeps its fence, as SQLite kept its own.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db import guard
from truelabel_db.capture.changelog import write_lock
from truelabel_db.catalog import changelog, primary, reverse_changelog
from truelabel_db.cutover.fence import FENCE_PREFIX, remove_fence
from truelabel_db.cutover.gate import Gate, GateError, Heartbeat, connect_redis
from truelabel_db.cutover.pg_fence import install_pg_fence, remove_pg_fence
from truelabel_db.errors import ExitCode, TrueLabelError
from truelabel_db.postgres import connect
from truelabel_db.rows.apply import key_array
from truelabel_db.rows.recorded import recorded_mapping
from truelabel_db.schema.ddl import idents
from truelabel_db.schema.mapping import Mapping, TableMap
from truelabel_db.sqlite_sql import quote_ident

TRIGGER = "truelabel_reverse_capture"


def install_reverse_capture(conn: psycopg.Connection, mapping: Mapping) -> None:
    with conn.transaction():
        for table in mapping.tables:
            conn.execute(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                sql.Identifier(TRIGGER), table.ident))
            conn.execute(sql.SQL("CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {} "
                                 "FOR EACH ROW EXECUTE FUNCTION truelabel_meta.capture_reverse({}, {})").format(
                sql.Identifier(TRIGGER), table.ident, sql.Literal(table.qualified), sql.Literal(table.key_column)))


def remove_reverse_capture(conn: psycopg.Connection, mapping: Mapping) -> None:
    with conn.transaction():
        for table in mapping.tables:
            conn.execute(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                sql.Identifier(TRIGGER), table.ident))


def legacy_values(table: TableMap, row: tuple[Any, ...]) -> dict[str, Any]:
    """A PostgreSQL row as the legacy columns it came from, through each transform's reverse.

    Columns an older file lacks are left out; carried extras come back from ``legacy_extra``.
    """
    values = {c.legacy: None if v is None else c.transform.to_legacy(v)
              for c, v in zip(table.columns, row) if not c.absent}
    if table.extra:
        values.update(zip(table.extra, table.extra_transform.to_legacy_values(row[len(table.columns)])))
    return values


def _replay_table(pg: psycopg.Connection, legacy: sqlite3.Connection, table: TableMap,
                  changes: dict[str, str]) -> int:
    """Make SQLite's rows of ``changes`` equal to PostgreSQL's (or gone): one batch of a rollback."""
    keys = [k for k, op in changes.items() if op == "U"]
    deletes = [k for k, op in changes.items() if op == "D"]
    name, key_col = quote_ident(table.legacy), quote_ident(table.legacy_key)
    rows = pg.execute(sql.SQL("SELECT {} FROM {} WHERE {} = ANY({})").format(
        idents(table.target_columns), table.ident, sql.Identifier(table.key_column), key_array(table)),
        (keys,)).fetchall()
    present = set()
    columns = [c.legacy for c in table.columns if not c.absent] + list(table.extra)
    # REPLACE: a row holding a unique value this one takes back (a swap made in PostgreSQL) gives
    # way; its own replay, further on, writes its current value.
    statement = (f"INSERT OR REPLACE INTO {name} ({', '.join(quote_ident(c) for c in columns)}) "
                 f"VALUES ({', '.join('?' * len(columns))})")
    for row in rows:
        values = legacy_values(table, row)
        present.add(str(values[table.legacy_key]))
        legacy.execute(statement, [values[c] for c in columns])
    gone = deletes + [k for k in keys if k not in present]
    for start in range(0, len(gone), 500):
        part = gone[start:start + 500]
        legacy.execute(f"DELETE FROM {name} WHERE {key_col} IN ({', '.join('?' * len(part))})", part)
    return len(rows) + len(gone)


@dataclass
class RollbackReport:
    replayed: int = 0
    batches: int = 0
    write_pause_ms: float = 0.0
    steps: list[tuple[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"replayed": self.replayed, "batches": self.batches, "write_pause_ms": round(self.write_pause_ms, 1),
                "steps": [{"step": s, "ms": round(ms, 1)} for s, ms in self.steps]}


class RollbackError(TrueLabelError):
    exit_code = ExitCode.ROLLBACK


REPLAY_BATCH = 2_000
GRACE_MS = 100


class Rollback:
    """One rollback. The cutover uses it too, to undo a switch after which the app wrote."""

    def __init__(self, source: Path, target_url: str, gate: Gate, say: Callable[[str], None] = lambda _: None,
                 *, batch: int = REPLAY_BATCH, grace_ms: int = GRACE_MS) -> None:
        self.source, self.url, self.gate, self.say = source, target_url, gate, say
        self.batch, self.grace_ms = batch, grace_ms
        self.report = RollbackReport()

    def step(self, name: str, action: Callable[[], object]) -> None:
        started = time.perf_counter()
        action()
        ms = (time.perf_counter() - started) * 1000
        self.report.steps.append((name, ms))
        self.say(f"{name:<14} {ms:9.1f} ms")

    def run(self, *, gate_held: bool = False) -> RollbackReport:
        """Back to SQLite; ``gate_held``: the caller raised the gate already (and lowers it)."""
        with connect(self.url, autocommit=True) as pg:
            guard.writing_to_sqlite(pg, self.source, "rollback")
            mapping = recorded_mapping(pg)
            if not gate_held:
                self.step("raise gate", self.gate.raise_)
            pause = time.perf_counter()
            try:
                with Heartbeat(self.gate) as heartbeat:
                    self.step("grace", lambda: time.sleep(self.grace_ms / 1000))
                    self.step("fence postgres", lambda: install_pg_fence(pg, mapping))
                    self.step("replay", lambda: self._replay(pg, mapping))
                    heartbeat.check("switching back to SQLite")
                    self.step("switch", lambda: self._switch_back(pg, mapping))
            except BaseException as exc:
                self._undo(pg, mapping, gate_held)
                if isinstance(exc, (TrueLabelError, psycopg.Error, sqlite3.Error)):
                    raise RollbackError(f"rollback failed and was undone (PostgreSQL is still the primary; "
                                        f"what was replayed stays replayed): {exc}") from exc
                raise
        if not gate_held:
            self.step("lower gate", self.gate.lower)
        self.report.write_pause_ms = (time.perf_counter() - pause) * 1000
        return self.report

    def _replay(self, pg: psycopg.Connection, mapping: Mapping) -> None:
        """Batch by batch, each under SQLite's write lock for that batch only; trimmed once committed."""
        by_qualified = {t.qualified: t for t in mapping.tables} | {t.target: t for t in mapping.tables}
        while (batch := reverse_changelog.read_after(pg, 0, self.batch)) is not None:
            with write_lock(self.source) as legacy:
                fences = _lift_fence(legacy)
                for target, changes in batch.changes.items():
                    if target in by_qualified:
                        self.report.replayed += _replay_table(pg, legacy, by_qualified[target], changes)
                for statement in fences:  # back in the same transaction: the app never sees SQLite open
                    legacy.execute(statement)
                changelog.record_schema_version(legacy)
            reverse_changelog.trim(pg, batch.last_seq)
            self.report.batches += 1

    def _switch_back(self, pg: psycopg.Connection, mapping: Mapping) -> None:
        with pg.transaction(), pg.cursor() as cur:
            primary.switch(cur, guard.source_key(self.source), primary.SQLITE, "rollback")
        remove_fence(self.source)
        remove_reverse_capture(pg, mapping)
        self.gate.publish_primary("sqlite", str(self.source.resolve()))

    def _undo(self, pg: psycopg.Connection, mapping: Mapping, gate_held: bool) -> None:
        """PostgreSQL stays the primary and writable; SQLite keeps its fence."""
        try:
            if primary.current(pg, guard.source_key(self.source)).primary == primary.POSTGRESQL:
                remove_pg_fence(pg, mapping)
        except psycopg.Error:
            pass  # PostgreSQL itself failed: its fence is lifted by the next rollback or cutover
        if not gate_held:
            try:
                self.gate.lower()
            except GateError:
                pass  # it expires by itself


def _lift_fence(legacy: sqlite3.Connection) -> list[str]:
    """Drop SQLite's fence inside the caller's transaction; returns the statements that restore it."""
    rows = legacy.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
    fences = [(name, text) for name, text in rows if name.startswith(FENCE_PREFIX)]
    for name, _ in fences:
        legacy.execute(f"DROP TRIGGER IF EXISTS {quote_ident(name)}")
    return [text for _, text in fences]


def rollback(source: Path, target_url: str, redis_url: str, primary_file: Path | None = None,
             say: Callable[[str], None] = lambda _: None) -> RollbackReport:
    """Back to SQLite after cutover, with every write made on PostgreSQL since."""
    return Rollback(source, target_url, Gate(connect_redis(redis_url), primary_file), say).run()
