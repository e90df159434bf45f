"""Copying one chunk, with fallbacks that narrow a failure down to the rows that cause it.

1. ``fast``: SQLite formats the rows that pass its checks (CSV), Python repairs the rest.
2. ``python``: if PostgreSQL refuses that COPY (a value SQLite's shape checks let through),
   every row of the chunk goes through Python's exact checks, one COPY.
3. ``row``: if PostgreSQL still refuses, each row is loaded on its own under a savepoint and
   the ones it refuses are quarantined with PostgreSQL's own message.
Each attempt is one transaction that also marks the chunk done, so a crash redoes it whole.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass
from typing import Any

import psycopg

from truelabel_db.copy.catalog import Chunk, ChunkStats, mark_chunk_done
from truelabel_db.copy.convert import ConvertedRows, convert_rows, quarantine_record
from truelabel_db.copy.reader import ChunkQueries, ChunkRead, read_chunk
from truelabel_db.errors import ReconciliationError
from truelabel_db.quarantine import insert_records
from truelabel_db.target.load import copy_payload
from truelabel_db.target.mapping import TableMap

# Errors that mean "this data", as opposed to "this connection": only these trigger a fallback.
DATA_ERRORS = (psycopg.errors.DataError, psycopg.errors.IntegrityError,
               psycopg.errors.InvalidTextRepresentation, psycopg.errors.CharacterNotInRepertoire,
               psycopg.errors.UntranslatableCharacter)


@dataclass
class ChunkOutcome:
    stats: ChunkStats
    repairs: Counter[str]


class ChunkCopier:
    """One worker's pair of connections; copies the chunks it is handed."""

    def __init__(self, sqlite_conn: sqlite3.Connection, pg_conn: psycopg.Connection,
                 run_id: int, queries: dict[str, ChunkQueries]) -> None:
        self.sqlite = sqlite_conn
        self.pg = pg_conn
        self.run_id = run_id
        self.queries = queries

    def copy(self, table: TableMap, chunk: Chunk) -> ChunkOutcome:
        try:
            return self._attempt(table, chunk, in_python=False)
        except DATA_ERRORS:
            pass
        try:
            return self._attempt(table, chunk, in_python=True)
        except DATA_ERRORS:
            return self._row_by_row(table, chunk)

    def _read(self, table: TableMap, chunk: Chunk, in_python: bool) -> ChunkRead:
        read = read_chunk(self.sqlite, self.queries[table.legacy], chunk.low, chunk.high,
                          everything_in_python=in_python)
        if read.total != read.clean_rows + len(read.other_rows):
            raise ReconciliationError(
                f"{table.legacy} rowids {chunk.low}..{chunk.high}: read {read.total} rows but "
                f"split them into {read.clean_rows} + {len(read.other_rows)}")
        return read

    def _attempt(self, table: TableMap, chunk: Chunk, *, in_python: bool) -> ChunkOutcome:
        read = self._read(table, chunk, in_python)
        converted = convert_rows(table, read.other_rows)
        quarantined = converted.quarantined
        stats = ChunkStats(read=read.total, written=read.total - len(quarantined),
                           quarantined=len(quarantined), repaired=converted.repaired_rows,
                           path="python" if in_python else "fast")
        with self.pg.transaction(), self.pg.cursor() as cur:
            copy_payload(cur, table, read.csv_payload, csv=True)
            copy_payload(cur, table, converted.payload)
            insert_records(cur, quarantined, self.run_id)
            mark_chunk_done(cur, self.run_id, chunk, stats)
        return ChunkOutcome(stats, converted.repairs)

    def _row_by_row(self, table: TableMap, chunk: Chunk) -> ChunkOutcome:
        read = self._read(table, chunk, in_python=True)
        converted: ConvertedRows = convert_rows(table, read.other_rows)
        records = converted.quarantined
        written = 0
        with self.pg.transaction(), self.pg.cursor() as cur:
            for row in converted.rows:
                if row.line is None:
                    continue
                try:
                    with self.pg.transaction():
                        copy_payload(cur, table, row.line)
                    written += 1
                except DATA_ERRORS as exc:
                    reason = str(exc).splitlines()[0]
                    records.append(quarantine_record(table, row.raw, "load",
                                                     [{"column": "*", "reason": reason}]))
            insert_records(cur, records, self.run_id)
            stats = ChunkStats(read=read.total, written=written, quarantined=len(records),
                               repaired=converted.repaired_rows, path="row")
            mark_chunk_done(cur, self.run_id, chunk, stats)
        return ChunkOutcome(stats, converted.repairs)


def worker_connections(snapshot: Any, target_url: str) -> tuple[sqlite3.Connection, psycopg.Connection]:
    """Open the read-only snapshot and a target connection tuned for bulk loading."""
    from truelabel_db.legacy.source import connect as sqlite_connect
    from truelabel_db.target.connection import connect as pg_connect

    sqlite_conn = sqlite_connect(snapshot)
    sqlite_conn.execute("PRAGMA cache_size = -65536")
    sqlite_conn.execute("PRAGMA mmap_size = 1073741824")
    pg_conn = pg_connect(target_url, autocommit=True, application_name="truelabel-db copy")
    pg_conn.execute("SET synchronous_commit = off")
    pg_conn.execute("SET maintenance_work_mem = '256MB'")
    return sqlite_conn, pg_conn
