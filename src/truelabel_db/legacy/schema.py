"""The legacy schema, read from SQLite itself rather than retyped.

The canonical DDL ships as ``prisma_schema.sql``, extracted verbatim from the real app's
development database; the generator creates files from it and the analyzer introspects any
file the same way, so both always agree with what Prisma actually wrote.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from importlib import resources

from truelabel_db.sqlite_sql import quote_ident


@dataclass(frozen=True)
class LegacyColumn:
    name: str
    declared_type: str
    not_null: bool
    default: str | None
    primary_key: bool


@dataclass(frozen=True)
class LegacyForeignKey:
    column: str
    parent_table: str
    parent_column: str
    on_delete: str


@dataclass(frozen=True)
class LegacyIndex:
    name: str
    columns: tuple[str, ...]
    unique: bool


@dataclass(frozen=True)
class LegacyTable:
    name: str
    columns: tuple[LegacyColumn, ...]
    foreign_keys: tuple[LegacyForeignKey, ...] = field(default=())
    indexes: tuple[LegacyIndex, ...] = field(default=())

    @property
    def primary_key(self) -> str:
        return next(c.name for c in self.columns if c.primary_key)

    def column(self, name: str) -> LegacyColumn:
        return next(c for c in self.columns if c.name == name)

    def is_indexed(self, column: str) -> bool:
        """True when some index (or the primary key) starts with ``column``."""
        if self.primary_key == column:
            return True
        return any(ix.columns and ix.columns[0] == column for ix in self.indexes)


def packaged_ddl() -> str:
    """The Prisma DDL as found in the real app's database."""
    return resources.files("truelabel_db.legacy").joinpath("prisma_schema.sql").read_text("utf-8")


def create_legacy_schema(conn: sqlite3.Connection) -> None:
    """Create every legacy table and index in an empty SQLite database."""
    conn.executescript(packaged_ddl())


def read_schema(conn: sqlite3.Connection) -> dict[str, LegacyTable]:
    """Introspect every user table of a SQLite database, in creation order."""
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
        )
    ]
    return {name: _read_table(conn, name) for name in names}


def _read_table(conn: sqlite3.Connection, name: str) -> LegacyTable:
    q = quote_ident(name)
    columns = tuple(
        LegacyColumn(name=r[1], declared_type=r[2], not_null=bool(r[3]), default=r[4],
                     primary_key=bool(r[5]))
        for r in conn.execute(f"PRAGMA table_info({q})")
    )
    fks = tuple(
        LegacyForeignKey(column=r[3], parent_table=r[2], parent_column=r[4], on_delete=r[6])
        for r in conn.execute(f"PRAGMA foreign_key_list({q})")
    )
    indexes = []
    for r in conn.execute(f"PRAGMA index_list({q})"):
        cols = tuple(c[2] for c in conn.execute(f"PRAGMA index_info({quote_ident(r[1])})"))
        indexes.append(LegacyIndex(name=r[1], columns=cols, unique=bool(r[2])))
    return LegacyTable(name=name, columns=columns, foreign_keys=fks, indexes=tuple(indexes))
