"""The copy's runs, chunks and steps (``copy_runs``, ``copy_chunks``, ``copy_steps``).

Written in the same transaction as the data they describe.

Like pgcopydb's catalog: a chunk is marked done in the transaction that loaded it, so after a
``kill -9`` a chunk is either entirely loaded and marked, or entirely absent and redone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from truelabel_db.errors import TargetError
from truelabel_db.postgres import describe, one


@dataclass(frozen=True)
class CopyRun:
    run_id: int
    source_path: str
    source_fingerprint: str
    snapshot_path: str
    options: dict[str, Any]


@dataclass(frozen=True)
class Chunk:
    legacy_table: str
    chunk_no: int
    low: int
    high: int


@dataclass(frozen=True)
class ChunkStats:
    read: int
    written: int
    quarantined: int
    repaired: int
    path: str


class NoMigration(TargetError):
    """The target holds no migration to work on: no copy was made into it (a wrong ``--target``?),
    or none that left a starting point. Final: waiting or retrying cannot change it."""


def exists(conn: psycopg.Connection) -> bool:
    """Whether any copy ever made the catalog here."""
    return bool(one(conn.execute("SELECT to_regclass('truelabel_meta.copy_runs') IS NOT NULL"))[0])


def require_migration(conn: psycopg.Connection) -> None:
    """Refuse, in words, a database that no copy went into: every later stage reads the catalog,
    and "relation truelabel_meta.copy_runs does not exist" is no way to learn the URL was wrong."""
    if not exists(conn):
        raise NoMigration(f"PostgreSQL {describe(conn.info.dsn)} holds no migration: no copy was made into it "
                          "(check --target; `truelabel-db copy` makes one)")


def unfinished_run(conn: psycopg.Connection) -> CopyRun | None:
    row = conn.execute(
        "SELECT run_id, source_path, source_fingerprint, snapshot_path, options "
        "FROM truelabel_meta.copy_runs WHERE status = 'running' ORDER BY run_id DESC LIMIT 1"
    ).fetchone()
    return CopyRun(*row) if row else None


def last_run(conn: psycopg.Connection) -> CopyRun | None:
    row = conn.execute(
        "SELECT run_id, source_path, source_fingerprint, snapshot_path, options "
        "FROM truelabel_meta.copy_runs ORDER BY run_id DESC LIMIT 1").fetchone()
    return CopyRun(*row) if row else None


def create_run(conn: psycopg.Connection, source_path: str, fingerprint: str,
               snapshot_path: str, options: dict[str, Any]) -> CopyRun:
    with conn.transaction():
        conn.execute("UPDATE truelabel_meta.copy_runs SET status = 'abandoned', "
                     "finished_at = now() WHERE status = 'running'")
        run_id = one(conn.execute(
            "INSERT INTO truelabel_meta.copy_runs (source_path, source_fingerprint, "
            "snapshot_path, options) VALUES (%s, %s, %s, %s) RETURNING run_id",
            (source_path, fingerprint, snapshot_path, Jsonb(options))))[0]
    return CopyRun(run_id, source_path, fingerprint, snapshot_path, options)


def plan_chunks(conn: psycopg.Connection, run_id: int,
                bounds: dict[str, tuple[int, int, int]], batch_size: int) -> None:
    """Cut each table's rowid range into chunks of about ``batch_size`` rows, once per run."""
    if conn.execute("SELECT 1 FROM truelabel_meta.copy_chunks WHERE run_id = %s LIMIT 1",
                    (run_id,)).fetchone():
        return
    rows = []
    for table, (count, low, high) in bounds.items():
        if count == 0:
            continue
        pieces = max(1, math.ceil(count / batch_size))
        span = (high - low + 1) / pieces
        edges = [low + round(i * span) for i in range(pieces)] + [high + 1]
        rows += [(run_id, table, i, edges[i], edges[i + 1] - 1) for i in range(pieces)
                 if edges[i + 1] > edges[i]]
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany("INSERT INTO truelabel_meta.copy_chunks "
                        "(run_id, legacy_table, chunk_no, rowid_low, rowid_high) "
                        "VALUES (%s, %s, %s, %s, %s)", rows)


def pending_chunks(conn: psycopg.Connection, run_id: int) -> list[Chunk]:
    rows = conn.execute(
        "SELECT legacy_table, chunk_no, rowid_low, rowid_high FROM truelabel_meta.copy_chunks "
        "WHERE run_id = %s AND done_at IS NULL ORDER BY legacy_table, chunk_no", (run_id,))
    return [Chunk(*r) for r in rows]


def mark_chunk_done(cur: psycopg.Cursor[Any], run_id: int, chunk: Chunk, stats: ChunkStats) -> None:
    cur.execute(
        "UPDATE truelabel_meta.copy_chunks SET rows_read = %s, rows_written = %s, "
        "rows_quarantined = %s, rows_repaired = %s, path = %s, done_at = now() "
        "WHERE run_id = %s AND legacy_table = %s AND chunk_no = %s",
        (stats.read, stats.written, stats.quarantined, stats.repaired, stats.path,
         run_id, chunk.legacy_table, chunk.chunk_no))


def chunk_totals(conn: psycopg.Connection, run_id: int) -> dict[str, dict[str, int]]:
    rows = conn.execute(
        "SELECT legacy_table, coalesce(sum(rows_read), 0), coalesce(sum(rows_written), 0), "
        "coalesce(sum(rows_quarantined), 0), coalesce(sum(rows_repaired), 0), count(*), "
        "count(*) FILTER (WHERE path <> 'fast') FROM truelabel_meta.copy_chunks "
        "WHERE run_id = %s GROUP BY legacy_table", (run_id,))
    return {r[0]: {"read": int(r[1]), "loaded": int(r[2]), "quarantined_on_load": int(r[3]),
                   "repaired": int(r[4]), "chunks": int(r[5]), "slow_chunks": int(r[6])}
            for r in rows}


def step_done(conn: psycopg.Connection, run_id: int, step: str) -> bool:
    return conn.execute("SELECT 1 FROM truelabel_meta.copy_steps WHERE run_id = %s AND step = %s",
                        (run_id, step)).fetchone() is not None


def record_step(conn: psycopg.Connection, run_id: int, step: str,
                detail: dict[str, Any] | None = None) -> None:
    conn.execute("INSERT INTO truelabel_meta.copy_steps (run_id, step, detail) VALUES (%s, %s, %s) "
                 "ON CONFLICT DO NOTHING", (run_id, step, Jsonb(detail or {})))


def finish_run(conn: psycopg.Connection, run_id: int) -> None:
    conn.execute("UPDATE truelabel_meta.copy_runs SET status = 'done', finished_at = now() "
                 "WHERE run_id = %s", (run_id,))


def set_changelog_position(conn: psycopg.Connection, run_id: int, position: int | None) -> None:
    conn.execute("UPDATE truelabel_meta.copy_runs SET changelog_position = %s WHERE run_id = %s",
                  (position, run_id))


def changelog_position_of(conn: psycopg.Connection, run_id: int) -> int | None:
    row = conn.execute("SELECT changelog_position FROM truelabel_meta.copy_runs WHERE run_id = %s",
                       (run_id,)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def step_detail(conn: psycopg.Connection, run_id: int, step: str) -> dict[str, Any] | None:
    """What a finished step recorded about itself (None if it has not finished)."""
    row = conn.execute("SELECT detail FROM truelabel_meta.copy_steps WHERE run_id = %s AND step = %s",
                       (run_id, step)).fetchone()
    return None if row is None else dict(row[0])


def followable_position(conn: psycopg.Connection) -> int | None:
    """Where the changelog stood in the newest finished copy's snapshot: where following starts."""
    row = conn.execute("SELECT changelog_position FROM truelabel_meta.copy_runs WHERE status = 'done' "
                       "ORDER BY run_id DESC LIMIT 1").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def orphan_policy(conn: psycopg.Connection) -> str:
    """The orphan policy of the newest finished copy (``quarantine`` when none says otherwise)."""
    row = conn.execute("SELECT options->>'orphan_policy' FROM truelabel_meta.copy_runs WHERE status = 'done' "
                       "ORDER BY run_id DESC LIMIT 1").fetchone()
    return str(row[0]) if row and row[0] else "quarantine"


def mapping_decision(conn: psycopg.Connection) -> dict[str, Any] | None:
    """The drift decision the newest copy (finished, else running) made: how the mapping was extended."""
    row = conn.execute("SELECT options->'mapping' FROM truelabel_meta.copy_runs WHERE status IN ('done', 'running') "
                       "ORDER BY (status = 'done') DESC, run_id DESC LIMIT 1").fetchone()
    return None if row is None else row[0]


@dataclass(frozen=True)
class TableProgress:
    legacy_table: str
    chunks_done: int
    chunks: int
    rows_read: int


def progress(conn: psycopg.Connection, run_id: int) -> list[TableProgress]:
    """Each table's chunks done out of planned, and rows read so far (a live copy's progress)."""
    rows = conn.execute(
        "SELECT legacy_table, count(*) FILTER (WHERE done_at IS NOT NULL), count(*), coalesce(sum(rows_read), 0) "
        "FROM truelabel_meta.copy_chunks WHERE run_id = %s GROUP BY legacy_table ORDER BY legacy_table",
        (run_id,)).fetchall()
    return [TableProgress(r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows]


def latest(conn: psycopg.Connection) -> tuple[CopyRun, str] | None:
    """The newest copy run and its status (running, done, abandoned)."""
    if not exists(conn):
        return None
    row = conn.execute("SELECT run_id, source_path, source_fingerprint, snapshot_path, options, status "
                       "FROM truelabel_meta.copy_runs ORDER BY run_id DESC LIMIT 1").fetchone()
    return (CopyRun(*row[:5]), str(row[5])) if row else None
