"""Writing operations into the legacy SQLite file the way the app and its scripts do.

Two connections per writer, as two programs would have: the Prisma app's, which sets
``PRAGMA foreign_keys = ON`` so the schema's CASCADE, SET NULL and RESTRICT apply, and a
script's, with foreign keys OFF, where nothing is checked. A unit of several statements runs
in ``BEGIN IMMEDIATE``: the write lock is taken up front, waiting out the busy timeout, so a
transaction never fails half-way on a lock it could not upgrade.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from truelabel_db.cutover.fence import MESSAGE as FENCE_MESSAGE
from truelabel_db.sqlite_sql import quote_ident
from truelabel_db.workload.statements import REPLACE, Insert, Match, Statement, Unit, Update, Upsert
from truelabel_db.workload.target import Fenced, Locked, Refused

SYNCHRONOUS = {"off": "OFF", "normal": "NORMAL", "full": "FULL"}
_REFUSALS = (("FOREIGN KEY", "foreign_key"), ("UNIQUE", "unique"), ("NOT NULL", "not_null"),
             ("CHECK", "check"))


class SqliteTarget:
    name = "sqlite"

    def __init__(self, path: Path, busy_timeout_ms: int, synchronous: str | None = None) -> None:
        self.path, self.busy_timeout_ms, self.synchronous = path, busy_timeout_ms, synchronous
        self._connections: dict[bool, sqlite3.Connection] = {}

    def connection(self, fk_on: bool) -> sqlite3.Connection:
        if fk_on not in self._connections:
            # mode=rw: a file that went away is an error, not a new empty database
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=rw", uri=True,
                                   timeout=self.busy_timeout_ms / 1000, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            conn.execute(f"PRAGMA foreign_keys = {'ON' if fk_on else 'OFF'}")
            if self.synchronous is not None:
                conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS[self.synchronous]}")
            self._connections[fk_on] = conn
        return self._connections[fk_on]

    def run_unit(self, unit: Unit, fk_on: bool) -> list[int]:
        conn = self.connection(fk_on)
        try:
            if len(unit) > 1:
                conn.execute("BEGIN IMMEDIATE")
            counts = [conn.execute(*render(statement)).rowcount for statement in unit]
            if conn.in_transaction:
                conn.execute("COMMIT")
            return counts
        except sqlite3.Error as exc:
            _rollback(conn)
            raise classify(exc) from exc

    def close(self) -> None:
        for conn in self._connections.values():
            _rollback(conn)
            conn.close()
        self._connections.clear()


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.OperationalError:
            pass  # SQLite already rolled it back (it does after some errors)


def classify(exc: sqlite3.Error) -> Exception:
    """Our three outcomes for what SQLite said; anything else is left as it is (an error)."""
    text = str(exc)
    if isinstance(exc, sqlite3.IntegrityError):
        if FENCE_MESSAGE in text:
            return Fenced(text)
        reason = next((name for marker, name in _REFUSALS if marker in text), "constraint")
        return Refused(reason, text)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return Locked(text)
    return exc


def render(statement: Statement) -> tuple[str, list[Any]]:
    """The SQL and parameters of one statement, in the legacy names; values as a script wrote them."""
    table = quote_ident(statement.table)
    if isinstance(statement, Insert):
        return _insert(table, statement)
    if isinstance(statement, Update):
        values = statement.written()
        where, params = _where(statement.where)
        assignments = ", ".join(f"{quote_ident(c)} = ?" for c in values)
        return f"UPDATE {table} SET {assignments} WHERE {where}", [*values.values(), *params]
    where, params = _where(statement.where)
    return f"DELETE FROM {table} WHERE {where}", params


def _insert(table: str, statement: Insert) -> tuple[str, list[Any]]:
    values = statement.written()
    columns = ", ".join(quote_ident(c) for c in values)
    verb = "INSERT OR REPLACE" if statement.conflict == REPLACE else "INSERT"
    sql = f"{verb} INTO {table} ({columns}) VALUES ({', '.join('?' * len(values))})"
    if isinstance(statement.conflict, Upsert):
        target = ", ".join(quote_ident(c) for c in statement.conflict.conflict)
        updates = ", ".join(f"{quote_ident(c)} = excluded.{quote_ident(c)}" for c in statement.conflict.update)
        sql += f" ON CONFLICT ({target}) DO UPDATE SET {updates}"
    return sql, list(values.values())


def _where(where: Mapping[str, Match]) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for column, match in where.items():
        if isinstance(match, tuple):
            clauses.append(f"{quote_ident(column)} IN ({', '.join('?' * len(match))})")
            params += list(match)
        else:
            clauses.append(f"{quote_ident(column)} = ?")
            params.append(match)
    return " AND ".join(clauses), params
