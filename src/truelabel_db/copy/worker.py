"""Copying one chunk, and finding in one pass the rows PostgreSQL refuses.

The chunk is read and loaded on the fast path inside a savepoint. If PostgreSQL refuses the
COPY (a value only it can judge: a UUID, an address, a NUL byte), its error names the column:
from then on that column of that table is checked in Python before every chunk is sent, and
the rows whose value the mapping refuses go to the slow path with the rows SQLite's own checks
caught (repaired or quarantined). The chunk is then tried again, without them: one refusal
costs one more read of its chunk, and later chunks none, however many bad values they hold.
A refusal that names no column (a byte sequence that is not UTF-8) is traced to its row by
PostgreSQL's record number; one that cannot be traced at all is narrowed by bisecting the
range, down to a few dozen rows loaded one at a time. The whole chunk, its quarantine rows and
its "done" mark commit together, so a crash redoes it whole.
"""

from __future__ import annotations

import re
import socket
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from truelabel_db.catalog.copy_runs import Chunk, ChunkStats, mark_chunk_done
from truelabel_db.catalog.quarantine import QuarantineRecord, insert_records
from truelabel_db.copy.reader import (
    ChunkQueries,
    ChunkRead,
    column_values,
    formatted_rowid,
    read_chunk,
    rows_with_nul,
)
from truelabel_db.errors import ReconciliationError
from truelabel_db.rows.convert import convert_rows, quarantine_record
from truelabel_db.rows.load import copy_payload
from truelabel_db.schema.mapping import TableMap
from truelabel_db.schema.transforms import Inet, Text, Unconvertible, Uuid

# Errors that mean "this data", as opposed to "this connection": only these are narrowed down.
DATA_ERRORS = (psycopg.errors.DataError, psycopg.errors.IntegrityError)
SMALLEST_RANGE = 32
MAX_TRACED = 64  # refusals traced by record number in one chunk before bisecting instead
# A byte PostgreSQL's encoding refuses (NUL, broken UTF-8): the error names no column.
ENCODING_ERRORS = (psycopg.errors.CharacterNotInRepertoire, psycopg.errors.UntranslatableCharacter)
ENCODING = "*encoding"


@dataclass
class _Tally:
    read: int = 0
    quarantined: list[QuarantineRecord] = field(default_factory=list)
    repaired: int = 0
    repairs: Counter[str] = field(default_factory=Counter)
    narrowed: bool = False

    def add_read(self, read: ChunkRead, table: TableMap, chunk_low: int, chunk_high: int) -> None:
        if read.total != read.clean_rows + len(read.other_rows):
            raise ReconciliationError(
                f"{table.legacy} rowids {chunk_low}..{chunk_high}: read {read.total} rows but "
                f"split them into {read.clean_rows} + {len(read.other_rows)}")
        self.read += read.total


@dataclass
class ChunkOutcome:
    stats: ChunkStats
    repairs: Counter[str]


@dataclass
class QueryBook:
    """Each table's queries, and the classes of value PostgreSQL has refused in it (shared by
    the workers of one copy: a class refused once is checked before every later chunk)."""

    queries: dict[str, ChunkQueries]
    refused: dict[str, set[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def for_tables(cls, tables: list[TableMap]) -> "QueryBook":
        return cls({t.legacy: ChunkQueries.for_table(t) for t in tables})

    def get(self, table: str) -> ChunkQueries:
        return self.queries[table]

    def checks(self, table: TableMap) -> list[str]:
        """What this table's chunks check before they are sent (see :func:`_refused_values`)."""
        with self.lock:
            return sorted(self.refused.get(table.legacy, ()))

    def learn(self, table: TableMap, check: str) -> None:
        """Remember a refusal's class: checked before every later chunk of the table is sent."""
        with self.lock:
            self.refused.setdefault(table.legacy, set()).add(check)


class ChunkCopier:
    """One worker's pair of connections; copies the chunks it is handed."""

    def __init__(self, sqlite_conn: sqlite3.Connection, pg_conn: psycopg.Connection,
                 run_id: int, queries: QueryBook) -> None:
        self.sqlite = sqlite_conn
        self.pg = pg_conn
        self.run_id = run_id
        self.queries = queries

    def copy(self, table: TableMap, chunk: Chunk) -> ChunkOutcome:
        tally = _Tally()
        with self.pg.transaction(), self.pg.cursor() as cur:
            self._copy_range(cur, table, chunk.low, chunk.high, tally)
            insert_records(cur, tally.quarantined, self.run_id)
            stats = ChunkStats(read=tally.read, written=tally.read - len(tally.quarantined),
                               quarantined=len(tally.quarantined), repaired=tally.repaired,
                               path="narrowed" if tally.narrowed else "fast")
            mark_chunk_done(cur, self.run_id, chunk, stats)
        return ChunkOutcome(stats, tally.repairs)

    def _copy_range(self, cur: psycopg.Cursor[Any], table: TableMap, low: int, high: int,
                    tally: _Tally) -> None:
        """Load rowids ``low..high``; each refusal teaches what to send to Python next time."""
        queries = self.queries.get(table.legacy)
        excluded = self._refused_in_python(table, low, high)
        for _ in range(MAX_TRACED):
            read = read_chunk(self.sqlite, queries, low, high, excluded=excluded)
            try:
                with self.pg.transaction():
                    copy_payload(cur, table, read.csv_payload, csv=True)
            except DATA_ERRORS as exc:
                tally.narrowed = True
                found = self._learn_from(exc, table, queries, low, high, excluded)
                if found is None:
                    self._bisect(cur, table, low, high, tally)
                    return
                excluded |= found
                continue
            tally.add_read(read, table, low, high)
            self._load_python_rows(cur, table, read.other_rows, tally)
            return
        self._bisect(cur, table, low, high, tally)

    def _load_python_rows(self, cur: psycopg.Cursor[Any], table: TableMap, rows: list[tuple[Any, ...]],
                          tally: _Tally) -> None:
        """The rows SQLite could not vouch for, converted in Python: in one COPY, or one by one
        if PostgreSQL refuses what Python accepted."""
        converted = convert_rows(table, rows)
        try:
            with self.pg.transaction():
                copy_payload(cur, table, converted.payload)
        except DATA_ERRORS:
            tally.narrowed = True
            self._load_rows_alone(cur, table, rows, tally)
            return
        tally.quarantined += converted.quarantined
        tally.repaired += converted.repaired_rows
        tally.repairs.update(converted.repairs)

    def _learn_from(self, error: psycopg.Error, table: TableMap, queries: ChunkQueries, low: int,
                    high: int, excluded: set[int]) -> set[int] | None:
        """The rows to send to Python after this refusal; None when it cannot be traced."""
        check = ENCODING if isinstance(error, ENCODING_ERRORS) else _refused_column(error, table)
        if check is not None:
            self.queries.learn(table, check)
            found = _refused_values(self.sqlite, table, check, low, high) - excluded
            if found:
                return found
        record = _record_number(error)
        if record is None:
            return None
        rowid = formatted_rowid(self.sqlite, queries, low, high, excluded, record)
        return None if rowid is None or rowid in excluded else {rowid}

    def _refused_in_python(self, table: TableMap, low: int, high: int) -> set[int]:
        out: set[int] = set()
        for check in self.queries.checks(table):
            out |= _refused_values(self.sqlite, table, check, low, high)
        return out

    def _bisect(self, cur: psycopg.Cursor[Any], table: TableMap, low: int, high: int,
                tally: _Tally) -> None:
        if high - low + 1 <= SMALLEST_RANGE:
            self._row_by_row(cur, table, low, high, tally)
            return
        middle = (low + high) // 2
        self._copy_range(cur, table, low, middle, tally)
        self._copy_range(cur, table, middle + 1, high, tally)

    def _row_by_row(self, cur: psycopg.Cursor[Any], table: TableMap, low: int, high: int,
                    tally: _Tally) -> None:
        read = read_chunk(self.sqlite, self.queries.get(table.legacy), low, high,
                          everything_in_python=True)
        tally.add_read(read, table, low, high)
        self._load_rows_alone(cur, table, read.other_rows, tally)

    def _load_rows_alone(self, cur: psycopg.Cursor[Any], table: TableMap,
                         rows: list[tuple[Any, ...]], tally: _Tally) -> None:
        """The slow path's last resort: each row converted and loaded under its own savepoint."""
        converted = convert_rows(table, rows)
        tally.quarantined += converted.quarantined
        for row in converted.rows:
            if row.line is None:
                continue
            try:
                with self.pg.transaction():
                    copy_payload(cur, table, row.line)
            except DATA_ERRORS as exc:
                reason = str(exc).splitlines()[0]
                tally.quarantined.append(quarantine_record(table, row.raw, "load",
                                                           [{"column": "*", "reason": reason}]))
                continue
            if row.repairs:
                tally.repaired += 1
                tally.repairs.update(row.repairs)


def _refused_values(conn: sqlite3.Connection, table: TableMap, check: str, low: int, high: int) -> set[int]:
    """The rowids in the range that ``check`` sends to Python: NUL bytes in any column (the
    encoding check, in SQLite), or a value of one column that the mapping refuses or has to
    repair (whose raw form PostgreSQL may refuse)."""
    if check == ENCODING:
        return rows_with_nul(conn, table, low, high)
    column = next(c for c in table.columns if c.legacy == check)
    plain = _PLAIN.get(type(column.transform))
    out = set()
    for rowid, value in column_values(conn, table, column, low, high):
        if plain is not None and isinstance(value, str) and plain(value):
            continue  # the common, clean case, decided in C
        try:
            if column.convert(value).repair is None:
                continue
        except Unconvertible:
            pass
        out.add(int(rowid))
    return out


def _plain_address(text: str) -> bool:
    """An address exactly as PostgreSQL takes and prints it (the C library's parser)."""
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    try:
        return socket.inet_ntop(family, socket.inet_pton(family, text)) == text
    except OSError:
        return False


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Values that need no look from the mapping: a tenth of the cost of converting them.
_PLAIN: dict[type, Callable[[str], bool]] = {
    Inet: _plain_address,
    Uuid: lambda text: _UUID.fullmatch(text) is not None,
    Text: lambda text: "\x00" not in text,
}


_RECORD = re.compile(r"\bline (\d+)")
_COLUMN = re.compile(r"\bcolumn (\w+)")


def _record_number(error: psycopg.Error) -> int | None:
    """The 1-based record PostgreSQL refused, from the COPY error's context."""
    match = _RECORD.search(getattr(error.diag, "context", None) or "")
    return int(match.group(1)) if match else None


def _refused_column(error: psycopg.Error, table: TableMap) -> str | None:
    """The legacy name of the mapped column whose value PostgreSQL refused, if its error says."""
    match = _COLUMN.search(getattr(error.diag, "context", None) or "")
    return next((c.legacy for c in table.columns if match and c.target == match.group(1)), None)


def worker_connections(snapshot: Path, target_url: str) -> tuple[sqlite3.Connection, psycopg.Connection]:
    """Open the read-only snapshot and a target connection tuned for bulk loading."""
    from truelabel_db.legacy.source import connect as sqlite_connect
    from truelabel_db.postgres import connect as pg_connect

    sqlite_conn = sqlite_connect(snapshot)
    # A chunk reads a contiguous rowid range once: a small page cache is enough, and memory
    # stays flat whatever the file's size.
    sqlite_conn.execute("PRAGMA cache_size = -8192")
    pg_conn = pg_connect(target_url, autocommit=True, application_name="truelabel-db copy", migration_writer=True)
    # A crash loses at most the last commits, and their chunk marks with them: redone on resume.
    pg_conn.execute("SET synchronous_commit = off")
    return sqlite_conn, pg_conn
