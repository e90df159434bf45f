"""Copying one chunk, narrowing any refusal down to the rows that cause it.

The chunk is read and loaded on the fast path inside a savepoint. If PostgreSQL refuses the
COPY (a value only it can judge: a UUID, an address, a NUL byte), the table switches to the
strict queries (SQLite checks those shapes too, for the rest of the run) and the chunk is
tried again. If it is still refused, the range is cut in two and each half tried again, down
to a few dozen rows; there every row goes through Python's exact
checks and is loaded alone, and whatever is still refused is quarantined with PostgreSQL's
own message. Good rows keep the fast path, so one bad row costs a few re-reads, not a chunk
converted in Python. The whole chunk, its quarantine rows and its "done" mark commit
together, so a crash redoes it whole.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from truelabel_db.catalog.copy_runs import Chunk, ChunkStats, mark_chunk_done
from truelabel_db.catalog.quarantine import QuarantineRecord, insert_records
from truelabel_db.copy.reader import (
    ChunkQueries,
    ChunkRead,
    fetch_by_rowids,
    read_chunk,
)
from truelabel_db.errors import ReconciliationError
from truelabel_db.rows.convert import convert_rows, quarantine_record
from truelabel_db.rows.load import copy_payload
from truelabel_db.schema.mapping import TableMap

# Errors that mean "this data", as opposed to "this connection": only these are narrowed down.
DATA_ERRORS = (psycopg.errors.DataError, psycopg.errors.IntegrityError)
SMALLEST_RANGE = 32


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
    """Each table's queries, relaxed or strict; shared by the workers of one copy."""

    relaxed: dict[str, ChunkQueries]
    strict: dict[str, ChunkQueries]
    strict_tables: set[str] = field(default_factory=set)

    @classmethod
    def for_tables(cls, tables: list[TableMap]) -> "QueryBook":
        return cls({t.legacy: ChunkQueries.for_table(t) for t in tables},
                   {t.legacy: ChunkQueries.for_table(t, strict=True) for t in tables})

    def get(self, table: str) -> ChunkQueries:
        return (self.strict if table in self.strict_tables else self.relaxed)[table]


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
        strict = table.legacy in self.queries.strict_tables
        read = read_chunk(self.sqlite, self.queries.get(table.legacy), low, high)
        converted = convert_rows(table, read.other_rows)
        try:
            with self.pg.transaction():
                copy_payload(cur, table, read.csv_payload, csv=True)
                copy_payload(cur, table, converted.payload)
        except DATA_ERRORS as exc:
            tally.narrowed = True
            if not strict:
                self.queries.strict_tables.add(table.legacy)
                self._copy_range(cur, table, low, high, tally)
            elif not self._trace_refusals(cur, table, read, exc, tally, (low, high)):
                self._bisect(cur, table, low, high, tally)
            return
        tally.add_read(read, table, low, high)
        tally.quarantined += converted.quarantined
        tally.repaired += converted.repaired_rows
        tally.repairs.update(converted.repairs)

    def _bisect(self, cur: psycopg.Cursor[Any], table: TableMap, low: int, high: int,
                tally: _Tally) -> None:
        if high - low + 1 <= SMALLEST_RANGE:
            self._row_by_row(cur, table, low, high, tally)
            return
        middle = (low + high) // 2
        self._copy_range(cur, table, low, middle, tally)
        self._copy_range(cur, table, middle + 1, high, tally)

    def _trace_refusals(self, cur: psycopg.Cursor[Any], table: TableMap, read: ChunkRead,
                        first_error: psycopg.Error, tally: _Tally, span: tuple[int, int]) -> bool:
        """Use PostgreSQL's own record number to isolate each refused row; False if it cannot.

        The good records before a refused one are loaded, the refused row goes to the slow path
        alone, and the COPY resumes after it: one bad row costs one re-sent suffix.
        """
        records = read.csv_payload.split(b"\n")[:-1] if read.csv_payload else []
        if read.csv_rowids is None or len(records) != len(read.csv_rowids):
            return False  # a quoted newline inside a value: records and lines differ
        converted = convert_rows(table, read.other_rows)
        try:
            with self.pg.transaction():
                copy_payload(cur, table, converted.payload)
        except DATA_ERRORS:
            return False
        refused: list[int] = []
        start, error = 0, first_error
        while True:
            number = _record_number(error)
            if number is None or start + number > len(records):
                return False
            bad = start + number - 1
            try:
                with self.pg.transaction():
                    copy_payload(cur, table, _join(records[start:bad]), csv=True)
            except DATA_ERRORS:
                return False
            refused.append(read.csv_rowids[bad])
            start = bad + 1
            try:
                with self.pg.transaction():
                    copy_payload(cur, table, _join(records[start:]), csv=True)
                break
            except DATA_ERRORS as exc:
                error = exc
        tally.add_read(read, table, *span)
        tally.quarantined += converted.quarantined
        tally.repaired += converted.repaired_rows
        tally.repairs.update(converted.repairs)
        self._load_rows_alone(cur, table, fetch_by_rowids(self.sqlite, table, refused), tally)
        return True

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


_RECORD = re.compile(r"\bline (\d+)")


def _record_number(error: psycopg.Error) -> int | None:
    """The 1-based record PostgreSQL refused, from the COPY error's context."""
    match = _RECORD.search(getattr(error.diag, "context", None) or "")
    return int(match.group(1)) if match else None


def _join(records: list[bytes]) -> bytes:
    return b"".join(r + b"\n" for r in records)


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
