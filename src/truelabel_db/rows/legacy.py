"""SQLite's current rows, by key, for any mapped table: what the rows layer converges on.

Keys arrive in two forms: as the changelog recorded them (SQLite's own spelling) and as
PostgreSQL holds them (canonical: a lower-case UUID). A row is looked up under both its given
spelling and the upper-case one, so an id that Prisma wrote in capitals is still found through
the index; other spellings are not searched (a full scan per key would not be bounded).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from truelabel_db.schema.mapping import TableMap
from truelabel_db.schema.transforms import decode_text
from truelabel_db.sqlite_sql import quote_ident

LOOKUP_BATCH = 400  # bound parameters per statement, well under SQLite's limit


class LegacyRows:
    """Reads current legacy rows through one connection (the caller's read transaction, if any)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def by_keys(self, table: TableMap, keys: Iterable[str]) -> dict[str, tuple[Any, ...]]:
        """Rows found, keyed by the key as it was asked for (either spelling matches)."""
        wanted = {str(k) for k in keys}
        if not wanted:
            return {}
        spellings: dict[str, str] = {}
        for key in wanted:
            spellings[key] = key
            spellings.setdefault(key.upper(), key)
        found: dict[str, tuple[Any, ...]] = {}
        self.conn.text_factory = decode_text
        columns = table.legacy_select()
        key_col = quote_ident(table.legacy_key)
        asked = list(spellings)
        for start in range(0, len(asked), LOOKUP_BATCH):
            part = asked[start:start + LOOKUP_BATCH]
            marks = ", ".join("?" * len(part))
            for row in self.conn.execute(f"SELECT {key_col}, {columns} FROM {quote_ident(table.legacy)} "
                                         f"WHERE {key_col} IN ({marks})", part):
                found.setdefault(spellings[str(row[0])], tuple(row[1:]))
        self.conn.text_factory = str
        return found

    def one(self, table: TableMap, key: str) -> tuple[Any, ...] | None:
        return self.by_keys(table, [key]).get(str(key))
