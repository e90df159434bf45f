"""What one writer knows about the rows it works on: a pool read once, then its own plans.

Determinism rests here. The pool is read by the parent before any writer starts, so every
writer of a run, and every run from the same file, starts from the same knowledge. After that
a writer learns only from what it planned (the intended effect of its operations), never from
what the database answers: outcomes can depend on how the writers interleave, the stream of
operations must not. Rows are split between writers for changes and deletes (a row is one
writer's to change), while any writer may reference any row, so writers still meet: one deletes
a product another is adding a validation to, as two users of the app would.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from truelabel_db.sqlite_sql import quote_ident

K = TypeVar("K")

# The columns a writer needs to know about each table's rows, first the key.
POOL_COLUMNS: dict[str, tuple[str, ...]] = {
    "users": ("id", "email", "role"),
    "laboratories": ("id", "email"),
    "products": ("id", "sku", "qrCode", "userId"),
    "reports": ("id", "productId"),
    "validations": ("id", "productId"),
    "product_seals": ("id", "productId"),
    "validation_queue": ("id", "productId"),
    "validation_queue_history": ("id", "queueId"),
    "qr_code_accesses": ("id", "qrCode"),
    "analytics_events": ("id",),
}
CHILD_PARENT = {"reports": "productId", "validations": "productId", "product_seals": "productId",
                "validation_queue": "productId", "validation_queue_history": "queueId"}


class KeySet(Generic[K]):
    """A set with a stable order, so that a seeded choice picks the same member every run."""

    def __init__(self, items: Iterable[K] = ()) -> None:
        self._items: list[K] = []
        self._where: dict[K, int] = {}
        for item in items:
            self.add(item)

    def add(self, item: K) -> None:
        if item not in self._where:
            self._where[item] = len(self._items)
            self._items.append(item)

    def discard(self, item: K) -> None:
        at = self._where.pop(item, None)
        if at is None:
            return
        last = self._items.pop()
        if at < len(self._items):
            self._items[at] = last
            self._where[last] = at

    def choice(self, rng: random.Random) -> K | None:
        return self._items[rng.randrange(len(self._items))] if self._items else None

    def at(self, position: int) -> K:
        return self._items[position]

    def __contains__(self, item: object) -> bool:
        return item in self._where

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class Pool:
    """Rows of the file at the start of a run (at most ``limit`` per table, in rowid order)."""

    rows: dict[str, list[tuple[str | None, ...]]] = field(default_factory=dict)

    def count(self) -> dict[str, int]:
        return {table: len(rows) for table, rows in self.rows.items()}

    def save(self, path: Path) -> None:
        """Written to a file for the writer processes (a pipe would block on a big pool)."""
        path.write_text(json.dumps(self.rows), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Pool:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls({table: [tuple(row) for row in rows] for table, rows in data.items()})


def read_pool(conn: sqlite3.Connection, limit: int) -> Pool:
    """Read the pool through ``conn`` (one read transaction, so the tables agree)."""
    pool = Pool()
    conn.execute("BEGIN")
    try:
        for table, columns in POOL_COLUMNS.items():
            names = ", ".join(quote_ident(c) for c in columns)
            rows = conn.execute(f"SELECT {names} FROM {quote_ident(table)} ORDER BY rowid LIMIT ?", (limit,))
            pool.rows[table] = [tuple(_text(v) for v in row) for row in rows]
    finally:
        conn.execute("COMMIT")
    return pool


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class Model:
    """One writer's view: which rows it may change (``mine``), which it may reference (``known``)."""

    def __init__(self, pool: Pool, index: int, writers: int) -> None:
        self.mine: dict[str, KeySet[str]] = {t: KeySet() for t in POOL_COLUMNS}
        self.known: dict[str, KeySet[str]] = {t: KeySet() for t in POOL_COLUMNS}
        self.role: dict[str, KeySet[str]] = {}
        self.email: dict[str, str] = {}          # user or laboratory id → email
        self.sku: dict[str, str] = {}
        self.qr_code: dict[str, str | None] = {}  # product id → its QR code
        self.parent: dict[str, str] = {}         # child id → product (or queue entry) id
        self.children: dict[str, set[tuple[str, str]]] = {}
        self.scan_code: dict[str, str] = {}
        for table, rows in pool.rows.items():
            for position, row in enumerate(rows):
                self._learn(table, row, mine=position % writers == index)

    def _learn(self, table: str, row: tuple[str | None, ...], mine: bool) -> None:
        key = row[0]
        if key is None:
            return
        if table == "users":
            self.add_user(key, row[1] or "", row[2] or "", mine)
            return
        if table == "laboratories":
            self.email[key] = row[1] or ""
        elif table == "products":
            self.sku[key], self.qr_code[key] = row[1] or "", row[2]
        elif table == "qr_code_accesses" and row[1] is not None:
            self.scan_code[key] = row[1]
        if table in CHILD_PARENT and row[1] is not None:
            self.link(table, key, row[1])
        self.add(table, key, mine)

    def add(self, table: str, key: str, mine: bool = True) -> None:
        self.known[table].add(key)
        if mine:
            self.mine[table].add(key)

    def add_user(self, key: str, email: str, role: str, mine: bool = True) -> None:
        self.email[key] = email
        self.role.setdefault(role, KeySet()).add(key)
        self.add("users", key, mine)

    def link(self, table: str, key: str, parent: str) -> None:
        self.parent[key] = parent
        self.children.setdefault(parent, set()).add((table, key))

    def forget(self, table: str, key: str) -> None:
        """The row is gone (as planned): never change or reference it again, nor its children."""
        self.known[table].discard(key)
        self.mine[table].discard(key)
        if table == "users":
            for members in self.role.values():
                members.discard(key)
        parent = self.parent.pop(key, None)
        if parent is not None:
            self.children.get(parent, set()).discard((table, key))
        for child_table, child in sorted(self.children.pop(key, set())):
            self.forget(child_table, child)

    def children_of(self, parent: str, table: str) -> list[str]:
        return sorted(k for t, k in self.children.get(parent, ()) if t == table)

    def pick_role(self, rng: random.Random, *roles: str) -> str | None:
        """A known user with one of ``roles``, else any known user."""
        groups = [self.role[r] for r in roles if self.role.get(r)]
        at = rng.randrange(sum(len(g) for g in groups)) if groups else 0
        for group in groups:
            if at < len(group):
                return group.at(at)
            at -= len(group)
        return self.known["users"].choice(rng)
