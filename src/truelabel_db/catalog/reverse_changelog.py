"""PostgreSQL's own changelog after cutover (``truelabel_meta.reverse_changelog``).

Triggers installed by the cutover append (table, key, upsert|delete) for every row the app
changes in PostgreSQL; a rollback replays them into SQLite in order, batch by batch, and trims
what it has replayed only once SQLite has committed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from truelabel_db.postgres import one


@dataclass
class ReverseBatch:
    """Each changed key's last operation in a run of the changelog, and where the run ends."""

    last_seq: int
    changes: dict[str, dict[str, str]] = field(default_factory=dict)  # target table -> key -> op

    @property
    def rows(self) -> int:
        return sum(len(keys) for keys in self.changes.values())


def read_after(conn: psycopg.Connection, position: int, limit: int) -> ReverseBatch | None:
    """The next ``limit`` entries after ``position``, collapsed to each key's last operation."""
    rows = conn.execute("SELECT seq, tbl, op, pk FROM truelabel_meta.reverse_changelog "
                        "WHERE seq > %s ORDER BY seq LIMIT %s", (position, limit)).fetchall()
    if not rows:
        return None
    batch = ReverseBatch(int(rows[-1][0]))
    for _, table, op, key in rows:
        batch.changes.setdefault(table, {})[key] = op
    return batch


def end(conn: psycopg.Connection) -> int:
    """The last entry's sequence number (0 when empty)."""
    return int(one(conn.execute("SELECT coalesce(max(seq), 0) FROM truelabel_meta.reverse_changelog"))[0])


def pending(conn: psycopg.Connection) -> int:
    return int(one(conn.execute("SELECT count(*) FROM truelabel_meta.reverse_changelog"))[0])


def trim(conn: psycopg.Connection, upto: int) -> None:
    """Forget entries up to ``upto``: only once SQLite holds what they describe."""
    conn.execute("DELETE FROM truelabel_meta.reverse_changelog WHERE seq <= %s", (upto,))


def clear(conn: psycopg.Connection) -> None:
    """A fresh start for a new cutover: nothing written to PostgreSQL before it needs replaying."""
    conn.execute("TRUNCATE truelabel_meta.reverse_changelog")
