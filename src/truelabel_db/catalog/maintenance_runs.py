"""The maintenance jobs' run records (``truelabel_meta.maintenance_runs``): running → done,
failed or skipped, with the detail of each run."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from truelabel_db.postgres import one
from truelabel_db.schema.ddl import schema_files


def exists(conn: psycopg.Connection) -> bool:
    return bool(one(conn.execute("SELECT to_regclass('truelabel_meta.maintenance_runs') IS NOT NULL"))[0])


def ensure_table(conn: psycopg.Connection) -> None:
    """Create the table when the schema predates it (idempotent DDL)."""
    if exists(conn):
        return
    conn.execute("CREATE SCHEMA IF NOT EXISTS truelabel_meta")
    (file,) = [f for f in schema_files("pre") if f.version == "pre_004_maintenance"]
    for statement in file.statements():
        conn.execute(statement.encode())


def start(conn: psycopg.Connection, job: str, status: str, detail: dict[str, Any]) -> int:
    """A new run record (finished at once unless ``status`` is running); returns its id."""
    finished = sql.SQL("now()") if status != "running" else sql.NULL
    return int(one(conn.execute(sql.SQL(
        "INSERT INTO truelabel_meta.maintenance_runs (job, status, detail, finished_at) "
        "VALUES (%s, %s, %s, {}) RETURNING run_id").format(finished),
        (job, status, Jsonb(detail))))[0])


def finish(conn: psycopg.Connection, run_id: int, status: str, detail: dict[str, Any], error: str | None) -> None:
    conn.execute("UPDATE truelabel_meta.maintenance_runs SET status = %s, detail = %s, error = %s, "
                 "finished_at = now() WHERE run_id = %s", (status, Jsonb(detail), error, run_id))


def recent(conn: psycopg.Connection, limit: int = 20, job: str | None = None) -> list[dict[str, Any]]:
    """The latest run records, newest first."""
    rows = conn.execute(
        "SELECT run_id, job, status, started_at, finished_at, detail, error "
        "FROM truelabel_meta.maintenance_runs WHERE %s::text IS NULL OR job = %s "
        "ORDER BY run_id DESC LIMIT %s", (job, job, limit)).fetchall()
    keys = ("run_id", "job", "status", "started_at", "finished_at", "detail", "error")
    return [dict(zip(keys, row)) for row in rows]


def health(conn: psycopg.Connection) -> list[tuple[str, str, str, float | None, int]]:
    """Per job: last status, last start, seconds since the last success, failures in a day."""
    if not exists(conn):
        return []
    rows = conn.execute(
        """SELECT job,
                  (array_agg(status ORDER BY run_id DESC))[1],
                  max(started_at),
                  extract(epoch FROM now() - max(finished_at) FILTER (WHERE status = 'done'))::float,
                  count(*) FILTER (WHERE status = 'failed' AND started_at > now() - interval '1 day')
             FROM truelabel_meta.maintenance_runs GROUP BY job ORDER BY job""").fetchall()
    return [(r[0], r[1], str(r[2]), None if r[3] is None else round(r[3], 1), int(r[4])) for r in rows]
