"""The optimized schema as versioned SQL, planned first and applied idempotently.

The schema has three phases so that the copy can load data between them, the way
pg_restore does: ``pre`` (bookkeeping, types, tables, partitions), ``constraints`` (keys and
foreign keys, composed from the declared mapping) and ``post`` (indexes, the dashboard view).
``schema apply`` runs all three; every statement is safe to run twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources

import psycopg
from psycopg import sql

from truelabel_db.catalog import cache_changes, schema_versions
from truelabel_db.schema.mapping import ENUMS, TABLES, ForeignKeyMap, TableMap

EXTENSIONS = ("uuid-ossp", "pg_trgm", "btree_gin", "pg_stat_statements")
PHASES = ("pre", "constraints", "post")


@dataclass(frozen=True)
class SchemaFile:
    version: str
    phase: str
    text: str
    requires: tuple[str, ...] = ()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def statements(self) -> list[str]:
        return split_statements(self.text)


@dataclass
class SchemaReport:
    """What ``apply`` did: extensions found and missing, and what it left out because of them."""

    extensions: dict[str, bool] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"extensions": self.extensions, "applied": self.applied, "skipped": self.skipped}


ENUMS_VERSION = "pre_001_enums_from_mapping"


def enum_sql() -> str:
    """The enum types, from the mapping's own enum declarations: one list of labels, not two.

    Created if missing; a label the mapping gained since is added to an existing type.
    """
    statements = []
    for enum in ENUMS:
        create = sql.SQL("CREATE TYPE {} AS ENUM ({})").format(
            sql.Identifier(enum.pg_type), sql.SQL(", ").join(sql.Literal(v) for v in enum.values))
        statements.append(sql.SQL("DO $$ BEGIN {}; EXCEPTION WHEN duplicate_object THEN NULL; END $$;").format(
            create).as_string(None))
        statements += [sql.SQL("ALTER TYPE {} ADD VALUE IF NOT EXISTS {};").format(
            sql.Identifier(enum.pg_type), sql.Literal(v)).as_string(None) for v in enum.values]
    return "-- generated from truelabel_db.schema.mapping.ENUMS\n" + "\n".join(statements) + "\n"


def schema_files(phase: str | None = None) -> list[SchemaFile]:
    """The packaged SQL files and the enums generated from the mapping, in version order."""
    folder = resources.files("truelabel_db.schema").joinpath("sql")
    files = [SchemaFile(ENUMS_VERSION, "pre", enum_sql())]
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        text = entry.read_text("utf-8")
        file_phase = entry.name.split("_", 1)[0]
        requires = tuple(
            line.split(":", 1)[1].strip()
            for line in text.splitlines() if line.startswith("-- requires:")
        )
        files.append(SchemaFile(entry.name.removesuffix(".sql"), file_phase, text, requires))
    files.sort(key=lambda f: f.version)
    return [f for f in files if phase is None or f.phase == phase]


def split_statements(text: str) -> list[str]:
    """Split a SQL file on top-level semicolons, keeping dollar-quoted bodies whole."""
    statements: list[str] = []
    current: list[str] = []
    in_dollar = False
    for line in text.splitlines():
        if line.strip().startswith("--") and not current:
            continue
        current.append(line)
        in_dollar ^= line.count("$$") % 2 == 1
        if not in_dollar and line.rstrip().endswith(";"):
            statements.append("\n".join(current).strip())
            current = []
    if "".join(current).strip():
        statements.append("\n".join(current).strip())
    return statements


def key_constraint(table: TableMap, columns: Sequence[str]) -> tuple[str, sql.Composed]:
    """The primary key (when ``columns`` is the table's) or a unique key, added only if missing."""
    primary = tuple(columns) == tuple(table.primary_key)
    name = f"{table.target}_pkey" if primary else f"{table.target}_{'_'.join(columns)}_key"
    kind = sql.SQL("PRIMARY KEY" if primary else "UNIQUE")
    return name, _add_constraint(table, name, sql.SQL("{} ({})").format(kind, idents(columns)))


def foreign_key_constraint(table: TableMap, fk: ForeignKeyMap,
                           orphan_policy: str) -> tuple[str, sql.Composed]:
    """A foreign key, added only if missing.

    With the ``keep`` orphan policy it is created NOT VALID: rows already present are not
    checked (the orphans stay, as asked) but every new write is. Foreign keys are DEFERRABLE
    (checked immediately unless a transaction defers them) so that the follower can apply a
    batch of changes in changelog order-agnostic form and have them checked at commit.
    """
    name = f"{table.target}_{fk.column}_fkey"
    clause = sql.SQL("FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE {} ON UPDATE {} DEFERRABLE {}").format(
        sql.Identifier(fk.column), sql.Identifier(table.target_schema, fk.parent),
        sql.Identifier(fk.parent_column), sql.SQL(_on_delete(fk.on_delete)), sql.SQL(_on_delete(fk.on_update)),
        sql.SQL("NOT VALID" if orphan_policy == "keep" else ""))
    return name, _add_constraint(table, name, clause,
                                 replace_unless=(_FK_ACTION_CODES[fk.on_delete], _FK_ACTION_CODES[fk.on_update]))


# pg_constraint.confdeltype for each ON DELETE action
_FK_ACTION_CODES = {"NO ACTION": "a", "RESTRICT": "r", "CASCADE": "c", "SET NULL": "n"}


def constraint_statements(tables: Iterable[TableMap] = TABLES, *,
                          orphan_policy: str = "quarantine") -> list[sql.Composed]:
    """Every key first, then every foreign key, parents first."""
    tables = list(tables)
    keys = [key_constraint(t, cols)[1] for t in tables for cols in (t.primary_key, *t.unique)]
    fks = [foreign_key_constraint(t, fk, orphan_policy)[1] for t in tables for fk in t.foreign_keys]
    return keys + fks


def _on_delete(action: str) -> str:
    allowed = {"CASCADE", "RESTRICT", "SET NULL", "NO ACTION"}
    if action not in allowed:
        raise ValueError(f"unsupported ON DELETE action {action!r}")
    return action


def idents(names: Iterable[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def _add_constraint(table: TableMap, name: str, clause: sql.Composed, *,
                    replace_unless: tuple[str, str] | None = None) -> sql.Composed:
    """ALTER TABLE ... ADD CONSTRAINT, guarded so that a second run does nothing.

    ``replace_unless``: a foreign key whose ON DELETE and ON UPDATE actions (``confdeltype``,
    ``confupdtype``) are not these was made by an older version of the schema; it is dropped
    and added again.
    """
    alter = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
        table.ident, sql.Identifier(name), clause).as_string(None)
    drop = sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
        table.ident, sql.Identifier(name)).as_string(None)
    regclass = table.ident.as_string(None)
    stale: sql.Composable = sql.SQL("")
    if replace_unless is not None:
        stale = sql.SQL("IF EXISTS (SELECT 1 FROM pg_constraint WHERE conname = {n} AND conrelid = {t}::regclass "
                        "AND (confdeltype <> {d} OR confupdtype <> {u})) THEN EXECUTE {drop}; END IF; ").format(
            n=sql.Literal(name), t=sql.Literal(regclass), d=sql.Literal(replace_unless[0]),
            u=sql.Literal(replace_unless[1]), drop=sql.Literal(drop))
    return sql.SQL(
        "DO $do$ BEGIN {stale}IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = {n} "
        "AND conrelid = {t}::regclass) THEN EXECUTE {alter}; END IF; END $do$").format(
        stale=stale, n=sql.Literal(name), t=sql.Literal(regclass), alter=sql.Literal(alter))


def ensure_extensions(conn: psycopg.Connection, report: SchemaReport) -> None:
    """Create each extension the schema likes to have; note, do not fail, when one is missing."""
    available = {r[0] for r in conn.execute("SELECT name FROM pg_available_extensions")}
    for name in EXTENSIONS:
        ok = False
        detail = "not installed on the server"
        if name in available:
            try:
                with conn.transaction():
                    conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(
                        sql.Identifier(name)))
                ok, detail = True, "installed"
            except psycopg.Error as exc:
                detail = str(exc).splitlines()[0]
        report.extensions[name] = ok
        if not ok:
            report.skipped[f"extension {name}"] = detail


def installed_extensions(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}


def apply_file(conn: psycopg.Connection, file: SchemaFile, report: SchemaReport,
               extensions: set[str]) -> None:
    missing = [ext for ext in file.requires if ext not in extensions]
    if missing:
        report.skipped[file.version] = "needs extension " + ", ".join(missing)
        return
    with conn.transaction():
        for statement in file.statements():
            conn.execute(statement.encode())
        schema_versions.record_applied(conn, file.version, file.checksum)
    report.applied.append(file.version)


def apply_schema(conn: psycopg.Connection, phases: Iterable[str] = PHASES, *,
                 orphan_policy: str = "quarantine") -> SchemaReport:
    """Install the chosen phases of the schema; safe to run any number of times."""
    report = SchemaReport()
    phases = list(phases)
    if "pre" in phases:
        ensure_extensions(conn, report)
        _record_features(conn, report)
    extensions = installed_extensions(conn)
    report.extensions = report.extensions or {e: e in extensions for e in EXTENSIONS}
    for phase in phases:
        if phase == "constraints":
            with conn.transaction():
                for statement in constraint_statements(orphan_policy=orphan_policy):
                    conn.execute(statement)
            report.applied.append("constraints")
            continue
        for file in schema_files(phase):
            apply_file(conn, file, report, extensions)
        if phase == "post":
            cache_changes.install_triggers(conn)
            report.applied.append("cache_change_triggers")
    return report


def _record_features(conn: psycopg.Connection, report: SchemaReport) -> None:
    conn.execute(schema_files("pre")[0].text.encode())  # bookkeeping schema first
    with conn.transaction():
        for name, ok in report.extensions.items():
            schema_versions.record_feature(conn, f"extension:{name}", ok,
                                           report.skipped.get(f"extension {name}", "installed"))


def plan_sql(phases: Iterable[str] = PHASES, *, orphan_policy: str = "quarantine") -> str:
    """Everything ``apply`` would run, as one script (``schema apply --sql``)."""
    parts = [f"CREATE EXTENSION IF NOT EXISTS \"{e}\";" for e in EXTENSIONS]
    for phase in phases:
        if phase == "constraints":
            parts += [s.as_string(None) + ";" for s in constraint_statements(orphan_policy=orphan_policy)]
        else:
            parts += [f"-- {f.version}\n{f.text}" for f in schema_files(phase)]
    return "\n".join(parts)
