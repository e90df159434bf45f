"""Writing the same operations into the optimized schema after cutover, through psycopg.

Names and values go through the declared mapping (``schema/mapping.py``): epoch milliseconds
become timestamptz, ``claims`` an array, LAB becomes LABORATORY. PostgreSQL always enforces
its foreign keys, so a script's connection is the app's here; and it never receives dirt
(the app writes typed values now), so an insert carries the clean values.
``INSERT OR REPLACE`` has no PostgreSQL twin: it becomes what SQLite does, a delete of every
row clashing on the key or a unique column, then the insert, in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import errors, sql

from truelabel_db.postgres import connect
from truelabel_db.schema.mapping import BY_LEGACY, ColumnMap, TableMap
from truelabel_db.schema.transforms import Unconvertible
from truelabel_db.workload.statements import REPLACE, Insert, Match, Statement, Unit, Update, Upsert
from truelabel_db.workload.target import Fenced, Locked, Refused

_REFUSALS: tuple[tuple[type[psycopg.Error], str], ...] = (
    (errors.ForeignKeyViolation, "foreign_key"), (errors.UniqueViolation, "unique"),
    (errors.NotNullViolation, "not_null"), (errors.CheckViolation, "check"),
    (errors.IntegrityError, "constraint"), (errors.DataError, "data"))
_RETRY = (errors.SerializationFailure, errors.DeadlockDetected, errors.LockNotAvailable)
Rendered = tuple[sql.Composed, list[Any]]


class PostgresTarget:
    name = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection | None = None

    def connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.url, autocommit=True, application_name="truelabel-workload")
        return self._conn

    def run_unit(self, unit: Unit, fk_on: bool) -> list[int]:
        try:
            rendered = [render(statement) for statement in unit]
        except Unconvertible as exc:
            raise Refused("data", f"not representable in PostgreSQL: {exc.reason}") from exc
        conn = self.connection()
        try:
            with conn.transaction():
                return [_run(conn, steps) for steps in rendered]
        except _RETRY as exc:
            raise Locked(str(exc)) from exc
        except errors.ReadOnlySqlTransaction as exc:
            raise Fenced(str(exc)) from exc
        except psycopg.OperationalError as exc:
            self.close()
            time.sleep(0.1)  # the server went away or restarts: reconnect on the retry
            raise Locked(str(exc)) from exc
        except psycopg.Error as exc:
            reason = next((name for kind, name in _REFUSALS if isinstance(exc, kind)), None)
            if reason is None:
                raise
            raise Refused(reason, str(exc).splitlines()[0]) from exc

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _run(conn: psycopg.Connection, steps: list[Rendered]) -> int:
    """Run the statements one logical statement became; its count is the last one's."""
    count = 0
    for query, params in steps:
        count = conn.execute(query, params).rowcount
    return count


def render(statement: Statement) -> list[Rendered]:
    table = BY_LEGACY[statement.table]
    if isinstance(statement, Insert):
        return _insert(table, statement)
    if isinstance(statement, Update):
        values = _values(table, statement.values)
        where, params = _where(table, statement.where)
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder()) for c in values)
        return [(sql.SQL("UPDATE {} SET {} WHERE {}").format(sql.Identifier(table.target), assignments, where),
                 [*values.values(), *params])]
    where, params = _where(table, statement.where)
    return [(sql.SQL("DELETE FROM {} WHERE {}").format(sql.Identifier(table.target), where), params)]


def _insert(table: TableMap, statement: Insert) -> list[Rendered]:
    values = _values(table, statement.values)
    names = sql.SQL(", ").join(sql.Identifier(c) for c in values)
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table.target), names, sql.SQL(", ").join(sql.Placeholder() * len(values)))
    if isinstance(statement.conflict, Upsert):
        conflict = [_column(table, c).target for c in statement.conflict.conflict]
        updates = [_column(table, c).target for c in statement.conflict.update]
        query += sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in conflict),
            sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in updates))
    steps = [(query, list(values.values()))]
    if statement.conflict == REPLACE:
        steps.insert(0, _clashing(table, values))
    return steps


def _clashing(table: TableMap, values: dict[str, Any]) -> Rendered:
    """DELETE every row REPLACE would remove: same key, or same value in a unique column."""
    keys = [table.primary_key[0]]
    keys += [cols[0] for cols in table.unique if len(cols) == 1 and values.get(cols[0]) is not None]
    where = sql.SQL(" OR ").join(sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder()) for k in keys)
    return (sql.SQL("DELETE FROM {} WHERE {}").format(sql.Identifier(table.target), where),
            [values[k] for k in keys])


def _column(table: TableMap, legacy: str) -> ColumnMap:
    return next(c for c in table.columns if c.legacy == legacy)


def _convert(column: ColumnMap, value: Any) -> Any:
    return None if value is None else column.convert(value).value


def _values(table: TableMap, values: Mapping[str, Any]) -> dict[str, Any]:
    """Legacy names and encodings → target names and typed values."""
    out = {}
    for legacy, value in values.items():
        column = _column(table, legacy)
        out[column.target] = _convert(column, value)
    return out


def _where(table: TableMap, where: Mapping[str, Match]) -> tuple[sql.Composable, list[Any]]:
    clauses, params = [], []
    for legacy, match in where.items():
        column = _column(table, legacy)
        items = match if isinstance(match, tuple) else (match,)
        params += [_convert(column, item) for item in items]
        clauses.append(sql.SQL("{} IN ({})").format(
            sql.Identifier(column.target), sql.SQL(", ").join(sql.Placeholder() * len(items))))
    return sql.SQL(" AND ").join(clauses), params
