"""The primary guard: nothing of ours writes to a database that is not the primary.

Before a cutover SQLite is the primary and the migration writes its rows into PostgreSQL
(follow, verify's repair, the copy, the quarantine's redrive). After the cutover PostgreSQL is
the primary and holds rows only the app wrote: any of those writes would overwrite or delete
them, so each refuses, with its own exit code. The rollback writes the other way and refuses
the other way round. The recorded primary (:mod:`truelabel_db.catalog.primary`) decides; read
``FOR SHARE`` inside the writer's transaction, a switch cannot slip in between.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from truelabel_db.catalog import primary
from truelabel_db.errors import ExitCode, TrueLabelError

MIGRATION_WRITER = "truelabel.migration_writer"  # a session setting the PostgreSQL fence lets through


class NotPrimaryError(TrueLabelError):
    """The operation would write to a database that is not the primary."""

    exit_code = ExitCode.NOT_PRIMARY


def source_key(source: Path | str) -> str:
    return str(Path(source).resolve())


def writing_to_postgres(conn: psycopg.Connection | psycopg.Cursor[Any], source: Path | str, action: str, *,
                        lock: bool = False) -> None:
    """Refuse ``action``, which writes SQLite's rows into PostgreSQL, once PostgreSQL is the primary."""
    state = primary.current(conn, source_key(source), lock=lock)
    if state.primary == primary.POSTGRESQL:
        raise NotPrimaryError(
            f"{action} refused: PostgreSQL has been the primary of {source_key(source)} since "
            f"{state.changed_at:%Y-%m-%d %H:%M:%S %Z} ({state.reason}); it would overwrite or delete rows the app "
            "wrote there. To make SQLite the primary again, run `truelabel-db rollback`")


def writing_to_sqlite(conn: psycopg.Connection | psycopg.Cursor[Any], source: Path | str, action: str) -> None:
    """Refuse ``action``, which writes PostgreSQL's rows into SQLite, unless PostgreSQL is the primary."""
    state = primary.current(conn, source_key(source), lock=True)
    if state.primary != primary.POSTGRESQL:
        raise NotPrimaryError(f"{action} refused: SQLite is the primary of {source_key(source)} "
                              "(no cutover is recorded); there is nothing to roll back")


def no_postgres_primary(conn: psycopg.Connection, action: str) -> None:
    """Refuse ``action`` (which writes legacy rows into PostgreSQL, whatever file they came from)
    when PostgreSQL is the primary of any legacy file."""
    switched = primary.any_postgresql(conn)
    if switched:
        raise NotPrimaryError(f"{action} refused: PostgreSQL is the primary (cutover of {', '.join(switched)}); "
                              "it would write legacy rows over the app's")


def opening_sqlite(conn: psycopg.Connection, source: Path | str, action: str) -> None:
    """Refuse ``action``, which lets the app write to SQLite again, while PostgreSQL is the primary
    (two databases taking writes is split brain)."""
    state = primary.current(conn, source_key(source))
    if state.primary == primary.POSTGRESQL:
        raise NotPrimaryError(f"{action} refused: PostgreSQL is the primary of {source_key(source)}; SQLite taking "
                              "writes too would split the data in two. Run `truelabel-db rollback` to go back")
