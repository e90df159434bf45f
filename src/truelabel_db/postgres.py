"""Connecting to the PostgreSQL target, with failures a user can act on.

A wrong URL, an unreachable server and a too-old server each become one line naming the
target without its password; the URL may come from ``--target`` or ``TRUELABEL_TARGET_URL``
so that no secret has to appear on a command line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from truelabel_db.errors import ConfigError, TargetError

TARGET_ENV = "TRUELABEL_TARGET_URL"
MIN_SERVER_VERSION = 130000  # gen_random_uuid() built in, generated columns, partitioned FKs


def resolve_target(url: str | None) -> str:
    """The target URL from the option, else from the environment, else a clear error."""
    chosen = url or os.environ.get(TARGET_ENV)
    if not chosen:
        raise ConfigError(f"no target database: pass --target or set {TARGET_ENV}")
    return chosen


def describe(url: str) -> str:
    """The target as it may appear in messages and logs: never with its password."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparseable target URL>"
    host = params.get("host", "localhost")
    port = params.get("port", "5432")
    return f"{params.get('user', '')}@{host}:{port}/{params.get('dbname', '')}".lstrip("@")


def absent_tables(conn: psycopg.Connection, names: Sequence[str]) -> list[str]:
    """Those of ``names`` that are no table (or view) on the connection's search_path."""
    return [r[0] for r in conn.execute("SELECT t FROM unnest(%s::text[]) t WHERE to_regclass(t) IS NULL",
                                       (list(names),))]


def connect(url: str, *, autocommit: bool = False, application_name: str = "truelabel-db",
            check_version: bool = True, migration_writer: bool = False) -> psycopg.Connection:
    """Open a connection, translating every way it can fail into :class:`TargetError`.

    ``migration_writer``: the session says it is the migration writing SQLite's rows, which
    the PostgreSQL fence (up after a rollback) lets through and refuses to the app.
    """
    try:
        extra = {}
        if migration_writer:
            given = conninfo_to_dict(url).get("options") or ""
            extra["options"] = f"{given} -c truelabel.migration_writer=on".strip()
        conninfo = make_conninfo(url, application_name=application_name, connect_timeout="10", **extra)
    except psycopg.ProgrammingError as exc:
        raise TargetError(f"invalid target URL: {redact(_first_line(exc))}") from exc
    try:
        conn = psycopg.connect(conninfo, autocommit=autocommit)
    except psycopg.Error as exc:
        raise TargetError(
            f"cannot connect to PostgreSQL {describe(url)}: {redact(_first_line(exc))}") from exc
    if check_version and conn.info.server_version < MIN_SERVER_VERSION:
        version = conn.info.parameter_status("server_version")
        conn.close()
        raise TargetError(f"PostgreSQL {describe(url)} is version {version}; truelabel-db needs 13 or newer")
    return conn


_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


def redact(text: str) -> str:
    """Mask anything that looks like a password in a URL or a key=value connection string."""
    return _KV_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


Row = TypeVar("Row")


def one(cursor: psycopg.Cursor[Row]) -> Row:
    """The row a statement must return (an aggregate, an INSERT ... RETURNING): never None."""
    row = cursor.fetchone()
    if row is None:
        raise TargetError("PostgreSQL returned no row where one was due")
    return row
