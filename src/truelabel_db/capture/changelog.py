"""Triggers that record every committed change to a legacy table in a changelog table.

Why triggers: SQLite has no replication log, and update hooks or the session extension see
only their own connection's writes, while the app writes from other processes. A trigger
runs inside the writer's own transaction, whoever the writer is, so a change and its
changelog row commit (or roll back) together. Trigger bodies use built-in SQL only: a
trigger calling a function registered by one connection would break every other connection.

The changelog records *which row* changed (table, key, upsert or delete), not its values:
the follower reads the row's current state when it applies the change, which is what makes
``INSERT OR REPLACE`` safe to follow (see :mod:`truelabel_db.capture` docs in the README).
A key change is recorded as the old key's delete and the new key's upsert.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from truelabel_db.catalog import changelog
from truelabel_db.catalog.changelog import record_schema_version
from truelabel_db.legacy.schema import read_schema
from truelabel_db.legacy.source import connect, translate_sqlite_error
from truelabel_db.schema.drift import UnmappedPolicy, UnmappedSchemaError, decide, effective_mapping
from truelabel_db.schema.mapping import TABLES, TableMap
from truelabel_db.sqlite_sql import quote_ident

TRIGGER_PREFIX = "_truelabel_"
CAPTURE_SUFFIXES = ("_ins", "_upd", "_del")


def capture_ddl(tables: tuple[TableMap, ...] = TABLES) -> list[str]:
    """Every statement ``install`` runs, built from the mapping (``capture install --sql``)."""
    statements = changelog.ddl()
    for table in tables:
        statements += _triggers(table)
    return statements


def trigger_name(table: TableMap, suffix: str) -> str:
    return f"{TRIGGER_PREFIX}{table.legacy}{suffix}"


def _triggers(table: TableMap) -> list[str]:
    name, key = quote_ident(table.legacy), quote_ident(table.legacy_key)
    upsert = changelog.append_sql(table.legacy, changelog.UPSERT, f"NEW.{key}")
    delete = changelog.append_sql(table.legacy, changelog.DELETE, f"OLD.{key}")
    key_moved = changelog.append_sql(table.legacy, changelog.DELETE, f"OLD.{key}", when=f"OLD.{key} IS NOT NEW.{key}")

    def trig(suffix: str) -> str:
        return quote_ident(trigger_name(table, suffix))

    return [
        f"CREATE TRIGGER IF NOT EXISTS {trig('_ins')} AFTER INSERT ON {name} BEGIN {upsert}; END",
        f"CREATE TRIGGER IF NOT EXISTS {trig('_upd')} AFTER UPDATE ON {name} BEGIN {key_moved}; {upsert}; END",
        f"CREATE TRIGGER IF NOT EXISTS {trig('_del')} AFTER DELETE ON {name} BEGIN {delete}; END",
        *_clash_triggers(table),
    ]


def _clash_triggers(table: TableMap) -> list[str]:
    """Rows an ``INSERT OR REPLACE`` (or ``UPDATE OR REPLACE``) is about to delete for a unique value.

    SQLite deletes a row clashing on a unique column without firing its delete trigger, unless
    the writing connection set ``recursive_triggers``. A BEFORE trigger still sees the row that
    is in the way and names it in the changelog; the follower then finds it gone. Should the
    statement fail instead (a plain INSERT), the entry rolls back with it; should it be ignored
    (``OR IGNORE``), the entry only makes the follower look at an unchanged row.
    """
    uniques = [[table.column_for_target(c).legacy for c in columns] for columns in table.unique]
    if not uniques:
        return []
    name, key = quote_ident(table.legacy), quote_ident(table.legacy_key)
    clash = " OR ".join("(" + " AND ".join(f"{quote_ident(c)} = NEW.{quote_ident(c)}" for c in cols) + ")"
                        for cols in uniques)
    held = changelog.append_sql(table.legacy, changelog.UPSERT, key, rows_of=name,
                                when=f"{key} IS NOT NEW.{key} AND ({clash})")
    columns = ", ".join(sorted({quote_ident(c) for cols in uniques for c in cols}))
    def trig(suffix: str) -> str:
        return quote_ident(trigger_name(table, suffix))

    return [
        f"CREATE TRIGGER IF NOT EXISTS {trig('_clash_ins')} BEFORE INSERT ON {name} BEGIN {held}; END",
        f"CREATE TRIGGER IF NOT EXISTS {trig('_clash_upd')} BEFORE UPDATE OF {columns} ON {name} BEGIN {held}; END",
    ]


@contextmanager
def write_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """A ``BEGIN IMMEDIATE`` transaction: waits (busy timeout) for the app, holds the lock briefly."""
    conn = connect(path, read_only=False)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise translate_sqlite_error(exc, path) from exc
    finally:
        conn.close()


def install_capture(path: Path, unmapped: UnmappedPolicy | None = None) -> "CaptureStatus":
    """Create the changelog and the triggers in one ``BEGIN IMMEDIATE`` transaction.

    Safe while the app writes: the transaction waits (busy timeout) for the write lock, holds
    it for milliseconds, and the app's next write is already captured. A file whose schema
    the mapping does not cover is refused unless ``unmapped`` says what to do (carried tables
    are captured too); the policy is recorded so that the copy applies the same.
    """
    with write_lock(path) as conn:
        policy = unmapped or _recorded_policy(conn) or UnmappedPolicy()
        mapping = effective_mapping(decide(conn, read_schema(conn), policy, name=str(path)))
        for statement in capture_ddl(mapping.tables):
            conn.execute(statement)
        changelog.set_setting(conn, "unmapped", policy.to_json())
        record_schema_version(conn)
    return capture_status(path)


def _recorded_policy(conn: sqlite3.Connection) -> UnmappedPolicy | None:
    recorded = changelog.setting(conn, "unmapped")
    return UnmappedPolicy.from_json(recorded) if recorded else None


def remove_capture(path: Path, *, keep_changelog: bool = False) -> None:
    """Drop the capture triggers (and the changelog, unless asked to keep it), in one transaction.

    Only capture's own triggers: the fence shares the name prefix, and removing it while
    PostgreSQL is the primary would let the app write to SQLite again (split brain).
    """
    with write_lock(path) as conn:
        for name in capture_triggers(conn):
            conn.execute(f"DROP TRIGGER IF EXISTS {quote_ident(name)}")
        if not keep_changelog:
            for statement in changelog.drop_ddl():
                conn.execute(statement)
            changelog.forget_sequence(conn)


def _expected_triggers(conn: sqlite3.Connection) -> int:
    """How many triggers capture installs under its recorded policy (what the count should be)."""
    try:
        policy = _recorded_policy(conn) or UnmappedPolicy()
        tables: tuple[TableMap, ...] = effective_mapping(decide(conn, read_schema(conn), policy)).tables
    except UnmappedSchemaError:
        tables = tuple(t for t in TABLES if t.legacy in read_schema(conn))
    return sum(len(_triggers(t)) for t in tables)


def capture_triggers(conn: sqlite3.Connection) -> list[str]:
    """The names of capture's triggers present in the file (never the fence's)."""
    return [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            if name.startswith(TRIGGER_PREFIX) and name.endswith(CAPTURE_SUFFIXES)]


@dataclass(frozen=True)
class CaptureStatus:
    installed: bool
    triggers: int
    expected_triggers: int
    pending_rows: int
    first_seq: int | None
    last_seq: int | None
    oldest_change_ms: int | None
    schema_version_at_install: int | None
    schema_version_now: int
    journal_mode: str

    @property
    def schema_changed(self) -> bool:
        return (self.schema_version_at_install is not None
                and self.schema_version_now != self.schema_version_at_install)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "schema_changed": self.schema_changed}


def capture_status(path: Path) -> CaptureStatus:
    conn = connect(path)
    try:
        installed = changelog.exists(conn)
        log = changelog.extent(conn) if installed else changelog.Extent(0, None, None, None)
        return CaptureStatus(installed, len(capture_triggers(conn)), _expected_triggers(conn), log.rows, log.first_seq,
                             log.last_seq, log.oldest_ms, changelog.recorded_schema_version(conn),
                             conn.execute("PRAGMA schema_version").fetchone()[0],
                             conn.execute("PRAGMA journal_mode").fetchone()[0])
    except sqlite3.Error as exc:
        raise translate_sqlite_error(exc, path) from exc
    finally:
        conn.close()

