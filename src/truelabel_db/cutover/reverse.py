"""After cutover: PostgreSQL's changes captured, and replayed into SQLite by a rollback.

The mirror of capture and follow. Triggers on every target table record which rows the app
changed; ``rollback`` gates the app, replays those rows into SQLite through each transform's
reverse (``to_legacy``: timestamps back to epoch ms, LABORATORY back to LAB, arrays back to
comma lists), lifts the fence, publishes SQLite as the primary and lowers the gate.
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

from truelabel_db.capture.changelog import write_lock
from truelabel_db.catalog import reverse_changelog
from truelabel_db.cutover.fence import FENCE_PREFIX
from truelabel_db.cutover.gate import Gate, connect_redis
from truelabel_db.errors import ExitCode, TrueLabelError
from truelabel_db.postgres import connect
from truelabel_db.schema.mapping import BY_TARGET, TABLES, TableMap
from truelabel_db.sqlite_sql import quote_ident

TRIGGER = "truelabel_reverse_capture"


def install_reverse_capture(conn: psycopg.Connection) -> None:
    with conn.transaction():
        for table in TABLES:
            conn.execute(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                sql.Identifier(TRIGGER), sql.Identifier(table.target)))
            conn.execute(sql.SQL("CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {} "
                                 "FOR EACH ROW EXECUTE FUNCTION truelabel_meta.capture_reverse({})").format(
                sql.Identifier(TRIGGER), sql.Identifier(table.target), sql.Literal(table.target)))


def remove_reverse_capture(conn: psycopg.Connection) -> None:
    with conn.transaction():
        for table in TABLES:
            conn.execute(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                sql.Identifier(TRIGGER), sql.Identifier(table.target)))


@dataclass
class RollbackReport:
    replayed: int = 0
    write_pause_ms: float = 0.0
    steps: list[tuple[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"replayed": self.replayed, "write_pause_ms": round(self.write_pause_ms, 1),
                "steps": [{"step": s, "ms": round(ms, 1)} for s, ms in self.steps]}


def _legacy_row(table: TableMap, row: tuple[Any, ...]) -> list[Any]:
    return [None if v is None else c.transform.to_legacy(v) for c, v in zip(table.columns, row)]


def _replay_table(pg: psycopg.Connection, legacy: sqlite3.Connection, table: TableMap,
                  changes: dict[str, str]) -> int:
    keys = [k for k, op in changes.items() if op == "U"]
    deletes = [k for k, op in changes.items() if op == "D"]
    name, key_col = quote_ident(table.legacy), quote_ident(table.legacy_key)
    rows = pg.execute(sql.SQL("SELECT {} FROM {} WHERE {}::text = ANY(%s)").format(
        sql.SQL(", ").join(sql.Identifier(c.target) for c in table.columns), sql.Identifier(table.target),
        sql.Identifier(table.primary_key[0])), (keys,)).fetchall()
    present = set()
    columns = [c.legacy for c in table.columns]
    updates = ", ".join(f"{quote_ident(c)} = excluded.{quote_ident(c)}" for c in columns if c != table.legacy_key)
    statement = (f"INSERT INTO {name} ({', '.join(quote_ident(c) for c in columns)}) "
                 f"VALUES ({', '.join('?' * len(columns))}) ON CONFLICT ({key_col}) DO UPDATE SET {updates}")
    for row in rows:
        values = _legacy_row(table, row)
        present.add(str(values[columns.index(table.legacy_key)]))
        legacy.execute(statement, values)
    gone = deletes + [k for k in keys if k not in present]
    for start in range(0, len(gone), 500):
        part = gone[start:start + 500]
        legacy.execute(f"DELETE FROM {name} WHERE {key_col} IN ({', '.join('?' * len(part))})", part)
    return len(rows) + len(gone)


def rollback(source: Path, target_url: str, redis_url: str, primary_file: Path | None = None,
             say: Callable[[str], None] = lambda _: None) -> RollbackReport:
    """Back to SQLite after cutover, with every write made on PostgreSQL since."""
    report = RollbackReport()
    gate = Gate(connect_redis(redis_url), primary_file)

    def step(name: str, action: Callable[[], object]) -> None:
        started = time.perf_counter()
        action()
        ms = (time.perf_counter() - started) * 1000
        report.steps.append((name, ms))
        say(f"{name:<12} {ms:9.1f} ms")

    step("raise gate", gate.raise_)
    pause = time.perf_counter()
    try:
        with connect(target_url, autocommit=True) as pg:
            def replay() -> None:
                with write_lock(source) as legacy:
                    for (trigger,) in legacy.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
                        if trigger.startswith(FENCE_PREFIX):
                            legacy.execute(f"DROP TRIGGER IF EXISTS {quote_ident(trigger)}")
                    batch = reverse_changelog.read_after(pg, 0, 2**62)
                    for target, changes in (batch.changes if batch else {}).items():
                        if target in BY_TARGET:
                            report.replayed += _replay_table(pg, legacy, BY_TARGET[target], changes)
            step("replay", replay)
            step("stop capture", lambda: (remove_reverse_capture(pg),
                                          reverse_changelog.clear(pg)))
        step("switch", lambda: gate.publish_primary("sqlite", str(source.resolve())))
    except BaseException as exc:
        gate.lower()
        if isinstance(exc, (TrueLabelError, psycopg.Error, sqlite3.Error)):
            raise RollbackError(f"rollback failed; PostgreSQL is still the primary: {exc}") from exc
        raise
    step("lower gate", gate.lower)
    report.write_pause_ms = (time.perf_counter() - pause) * 1000
    return report


class RollbackError(TrueLabelError):
    exit_code = ExitCode.ROLLBACK
