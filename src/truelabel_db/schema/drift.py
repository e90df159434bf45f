"""Schema drift: a legacy file that is not exactly the schema the mapping declares.

A later Prisma migration adds a column (``products.servingSize``) or a table (``favorites``); an
older file lacks a column the mapping expects; ``prisma db push`` makes a file without
``_prisma_migrations``. Nothing of it may pass silently. By default a file with columns or
tables the mapping does not know is refused, each named. ``--unmapped carry`` keeps them: the
columns in a per-table ``legacy_extra jsonb``, the tables in a ``legacy`` schema with types
inferred from their declared types and data; both are then captured, followed, verified and
rolled back like the rest. ``--unmapped ignore:TABLE[.COLUMN],...`` leaves named ones out, on
purpose and on record. A nullable column an older file lacks reads as NULL (Prisma's default
for it); a required one is refused.

The decision (what is carried, ignored, defaulted) is a value: the copy records it in the
catalog and every later stage rebuilds the same mapping from it.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from psycopg import sql

from truelabel_db.errors import ConfigError, ExitCode, SourceError, TrueLabelError
from truelabel_db.legacy.schema import LegacyTable
from truelabel_db.schema.mapping import DECLARED, ColumnMap, Mapping, TableMap
from truelabel_db.schema.transforms import Boolean, Bytes, Double, Integer, Text, Timestamp
from truelabel_db.sqlite_sql import quote_ident

OPTIONAL_TABLES = frozenset({"_prisma_migrations"})  # Prisma's bookkeeping: absent after `db push`
TOOL_PREFIXES = ("_truelabel_", "sqlite_")
CARRIED_SCHEMA = "legacy"
MODES = ("refuse", "carry")


class UnmappedSchemaError(TrueLabelError):
    """The legacy file has tables or columns the mapping does not know, or lacks required ones."""

    exit_code = ExitCode.UNMAPPED_SCHEMA


@dataclass(frozen=True)
class UnmappedPolicy:
    """What to do with what the mapping does not know: refuse (default) or carry; some ignored."""

    mode: str = "refuse"
    ignored: frozenset[str] = frozenset()  # "table" or "table.column", as the legacy file spells them

    @classmethod
    def parse(cls, values: Sequence[str] | None) -> UnmappedPolicy:
        """``--unmapped`` values: ``refuse``, ``carry``, ``ignore:TABLE[.COLUMN],...`` (repeatable)."""
        mode, ignored = "refuse", set()
        for value in values or ():
            if value.startswith("ignore:") or value.startswith("ignore="):
                ignored |= {item.strip() for item in value[7:].split(",") if item.strip()}
            elif value in MODES:
                mode = value
            else:
                raise ConfigError(f"--unmapped takes refuse, carry or ignore:TABLE[.COLUMN],...; not {value!r}")
        return cls(mode, frozenset(ignored))

    def describe(self) -> str:
        return " ".join([self.mode] + ([f"ignore:{','.join(sorted(self.ignored))}"] if self.ignored else []))

    def to_json(self) -> str:
        return json.dumps({"mode": self.mode, "ignored": sorted(self.ignored)})

    @classmethod
    def from_json(cls, text: str) -> UnmappedPolicy:
        data = json.loads(text)
        return cls(data["mode"], frozenset(data["ignored"]))

    def ignores(self, table: str, column: str | None = None) -> bool:
        return table in self.ignored or (column is not None and f"{table}.{column}" in self.ignored)


@dataclass(frozen=True)
class Drift:
    """How a legacy file differs from the declared mapping."""

    unmapped_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    unmapped_tables: tuple[str, ...] = ()
    missing_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    missing_tables: tuple[str, ...] = ()

    @property
    def none(self) -> bool:
        return not (self.unmapped_columns or self.unmapped_tables or self.missing_columns or self.missing_tables)

    def items(self) -> list[str]:
        """Every unmapped item, as ``--unmapped ignore:`` would name it."""
        return ([f"{t}.{c}" for t, cols in self.unmapped_columns.items() for c in cols]
                + list(self.unmapped_tables))


def detect(schema: dict[str, LegacyTable], mapping: Mapping = DECLARED) -> Drift:
    known = mapping.by_legacy
    unmapped_columns = {}
    missing_columns = {}
    for name, table in known.items():
        if name not in schema:
            continue
        present = {c.name for c in schema[name].columns}
        mapped = {c.legacy for c in table.columns}
        if extra := tuple(c.name for c in schema[name].columns if c.name not in mapped):
            unmapped_columns[name] = extra
        if lacking := tuple(c for c in (c.legacy for c in table.columns) if c not in present):
            missing_columns[name] = lacking
    unmapped_tables = tuple(sorted(n for n in schema if n not in known and not n.startswith(TOOL_PREFIXES)))
    missing_tables = tuple(n for n in known if n not in schema)
    return Drift(unmapped_columns, unmapped_tables, missing_columns, missing_tables)


@dataclass(frozen=True)
class CarriedColumn:
    legacy: str
    target: str
    pg_type: str
    transform: str  # the transform's name, to rebuild it


@dataclass(frozen=True)
class CarriedTable:
    legacy: str
    target: str
    key: str          # the legacy key column ("rowid" for a table without a primary key)
    columns: tuple[CarriedColumn, ...]


@dataclass(frozen=True)
class MappingDecision:
    """What the copy decided about drift; recorded in the catalog, rebuilt by every stage."""

    mode: str = "refuse"
    ignored: tuple[str, ...] = ()
    carried_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    carried_tables: tuple[CarriedTable, ...] = ()
    defaulted_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)  # read as NULL
    absent_tables: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> MappingDecision:
        if not data:
            return cls()
        tables = tuple(CarriedTable(t["legacy"], t["target"], t["key"],
                                    tuple(CarriedColumn(**c) for c in t["columns"]))
                       for t in data.get("carried_tables", ()))
        return cls(data.get("mode", "refuse"), tuple(data.get("ignored", ())),
                   {k: tuple(v) for k, v in data.get("carried_columns", {}).items()}, tables,
                   {k: tuple(v) for k, v in data.get("defaulted_columns", {}).items()},
                   tuple(data.get("absent_tables", ())))

    def summary(self) -> list[str]:
        """One line per decision, for the copy's summary and ``--json``."""
        lines = [f"carried column {t}.{c} (in {t}.legacy_extra)" for t, cols in self.carried_columns.items()
                 for c in cols]
        lines += [f"carried table {t.legacy} (as {CARRIED_SCHEMA}.{t.target})" for t in self.carried_tables]
        lines += [f"ignored {item} (--unmapped ignore)" for item in self.ignored]
        lines += [f"{t}.{c} is not in the file: read as NULL" for t, cols in self.defaulted_columns.items()
                  for c in cols]
        lines += [f"{t} is not in the file (optional)" for t in self.absent_tables]
        return lines


def decide(conn: sqlite3.Connection, schema: dict[str, LegacyTable], policy: UnmappedPolicy,
           mapping: Mapping = DECLARED, *, name: str = "the legacy file") -> MappingDecision:
    """Apply ``policy`` to the file's drift; refuse with every problem named when it says so."""
    drift = detect(schema, mapping)
    require_app_tables(drift, name, mapping)
    problems = _required_missing(drift, mapping)
    unmapped = [item for item in drift.items() if not policy.ignores(*item.split(".", 1))]
    unknown = sorted(i for i in policy.ignored if i not in drift.items())
    if unknown:
        problems.append("--unmapped ignore names what the file does not have unmapped: " + ", ".join(unknown))
    if unmapped and policy.mode == "refuse":
        problems.append("not in the mapping: " + ", ".join(unmapped)
                        + " (--unmapped carry keeps them; --unmapped ignore:NAME,... leaves them out, on record)")
    if problems:
        raise UnmappedSchemaError(f"the legacy file's schema differs from the mapping: {'; '.join(problems)}")
    carried_columns = {t: tuple(c for c in cols if not policy.ignores(t, c))
                       for t, cols in drift.unmapped_columns.items()} if policy.mode == "carry" else {}
    carried_tables = tuple(infer_table(conn, schema[t]) for t in drift.unmapped_tables
                           if policy.mode == "carry" and not policy.ignores(t))
    ignored = tuple(sorted(i for i in drift.items() if policy.ignores(*i.split(".", 1))))
    return MappingDecision(policy.mode, ignored, {t: c for t, c in carried_columns.items() if c}, carried_tables,
                           {t: cols for t, cols in drift.missing_columns.items()}, drift.missing_tables)


def required_absent(drift: Drift, mapping: Mapping = DECLARED) -> tuple[list[str], dict[str, list[str]]]:
    """The mapped tables, and the NOT NULL columns by table, that the file lacks: what makes copy
    and capture refuse it (an optional table, or a nullable column, is read as absent or NULL)."""
    tables = [t for t in drift.missing_tables if t not in OPTIONAL_TABLES]
    columns = {name: required for name, cols in drift.missing_columns.items()
               if (required := [c for c in cols if mapping.by_legacy[name].column_for_legacy(c).not_null])}
    return tables, columns


def require_app_tables(drift: Drift, name: str, mapping: Mapping = DECLARED) -> None:
    """Refuse a file lacking one of the app's tables (Prisma's bookkeeping excepted)."""
    missing, _ = required_absent(drift, mapping)
    if missing:
        raise SourceError(f"{name} is not a True Label database: missing tables {', '.join(missing)}")


def _required_missing(drift: Drift, mapping: Mapping) -> list[str]:
    problems = []
    for name, required in required_absent(drift, mapping)[1].items():  # tables with at least one
        problems.append(f"{name} lacks required column(s) {', '.join(required)} (an older app version? "
                        "migrate its schema first)")
    return problems


def effective_mapping(decision: MappingDecision, mapping: Mapping = DECLARED) -> Mapping:
    """The declared mapping as this file needs it: extras carried, absent columns as NULL,
    absent optional tables left out, carried tables added (in the ``legacy`` schema)."""
    tables = []
    for table in mapping.tables:
        if table.legacy in decision.absent_tables:
            continue
        defaulted = set(decision.defaulted_columns.get(table.legacy, ()))
        columns = tuple(replace(c, absent=True) if c.legacy in defaulted else c for c in table.columns)
        tables.append(replace(table, columns=columns, extra=decision.carried_columns.get(table.legacy, ())))
    tables += [carried_table_map(t) for t in decision.carried_tables]
    return Mapping(tuple(tables))


def carried_table_map(table: CarriedTable) -> TableMap:
    columns = tuple(ColumnMap(c.legacy, c.target, _TRANSFORMS[c.transform](), not_null=c.legacy == table.key)
                    for c in table.columns)
    key = next(c.target for c in table.columns if c.legacy == table.key)
    return TableMap(table.legacy, table.target, columns, primary_key=(key,), target_schema=CARRIED_SCHEMA)


_TRANSFORMS: dict[str, Any] = {
    "bigint": lambda: Integer("bigint"), "double": Double, "text": Text, "bytes": Bytes,
    "timestamp": Timestamp, "boolean": Boolean,
}


def infer_table(conn: sqlite3.Connection, table: LegacyTable) -> CarriedTable:
    """A carried table's columns and types: from each column's declared type and stored values."""
    keys = [c.name for c in table.columns if c.primary_key]
    key = keys[0] if len(keys) == 1 else "rowid"
    names = ([] if key != "rowid" else ["rowid"]) + [c.name for c in table.columns]
    columns = []
    for name in names:
        declared = "INTEGER" if name == "rowid" else table.column(name).declared_type
        kind = _infer(conn, table.name, name, declared)
        columns.append(CarriedColumn(name, "legacy_rowid" if name == "rowid" else snake(name),
                                     _PG_TYPES[kind], kind))
    return CarriedTable(table.name, snake(table.name), key, tuple(columns))


_PG_TYPES = {"bigint": "bigint", "double": "double precision", "text": "text", "bytes": "bytea",
             "timestamp": "timestamptz", "boolean": "boolean"}


def _infer(conn: sqlite3.Connection, table: str, column: str, declared: str) -> str:
    """The narrowest type holding every stored value; text when the values disagree."""
    col = quote_ident(column)
    kinds = {r[0] for r in conn.execute(f"SELECT DISTINCT typeof({col}) FROM {quote_ident(table)}")} - {"null"}
    declared = declared.upper()
    if "DATE" in declared or "TIME" in declared:
        return "timestamp"
    if "BOOL" in declared and kinds <= {"integer"}:
        return "boolean"
    if kinds <= {"integer"}:
        return "bigint" if kinds or "INT" in declared else "text"
    if kinds <= {"integer", "real"}:
        return "double"
    if kinds == {"blob"}:
        return "bytes"
    return "text"


def snake(name: str) -> str:
    """``servingSize`` → ``serving_size``; anything not a plain identifier becomes ``_``."""
    text = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    return re.sub(r"[^a-z0-9_]", "_", text)[:63] or "_"


def target_ddl(mapping: Mapping) -> list[sql.Composed]:
    """The target objects drift adds: ``legacy_extra`` columns, the ``legacy`` schema's tables."""
    statements: list[sql.Composed] = []
    for table in mapping.tables:
        if table.extra:
            statements.append(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS legacy_extra jsonb").format(
                table.ident))
    carried = [t for t in mapping.tables if t.target_schema == CARRIED_SCHEMA]
    if carried:
        statements.append(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(CARRIED_SCHEMA)))
    for table in carried:
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}{}").format(sql.Identifier(c.target), sql.SQL(c.transform.pg_type),
                                      sql.SQL(" NOT NULL" if c.not_null else ""))
            for c in table.columns)
        statements.append(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))").format(
            table.ident, columns, sql.Identifier(table.key_column)))
    return statements


def carried_tables(mapping: Mapping) -> Iterable[TableMap]:
    return (t for t in mapping.tables if t.target_schema == CARRIED_SCHEMA)
