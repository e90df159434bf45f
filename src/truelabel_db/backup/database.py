"""What a backup needs to know about a database: its rows per table, whether it is empty, and
creating or dropping a database next to another one on the same server."""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from truelabel_db.errors import TargetNotEmptyError
from truelabel_db.postgres import connect, describe, one

USER_RELATIONS = """
    SELECT n.nspname, c.relname, c.relkind
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = ANY(%s) AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%'
      AND (c.relkind <> 'm' OR c.relispopulated)
    ORDER BY 1, 2
"""


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Exact rows of every table (partitions included, parents not) and populated view."""
    counts = {}
    for schema, name, _ in conn.execute(USER_RELATIONS, (["r", "m"],)).fetchall():
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(name))
        counts[f"{schema}.{name}"] = int(one(conn.execute(query))[0])
    return counts


def table_bytes(conn: psycopg.Connection) -> int:
    """The tables' own size (heap and TOAST, no index): what a dump can grow to, uncompressed."""
    row = one(conn.execute("SELECT coalesce(sum(pg_table_size(c.oid)), 0) FROM pg_class c "
                       "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'm') "
                       "AND n.nspname NOT IN ('pg_catalog', 'information_schema')"))
    return int(row[0])


def require_empty(url: str) -> None:
    """Refuse to restore over anything: a restore goes into an empty database."""
    with connect(url) as conn:
        found = conn.execute(USER_RELATIONS + " LIMIT 3", (["r", "p", "v", "m", "S", "f"],)).fetchall()
    if found:
        names = ", ".join(f"{s}.{n}" for s, n, _ in found)
        raise TargetNotEmptyError(f"target {describe(url)} is not empty ({names}...): "
                                  "restore into a new or empty database")


def sibling_url(url: str, dbname: str) -> str:
    """The URL of another database on the same server, with the same credentials."""
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**{k: str(v) for k, v in params.items()})


def database_name(url: str) -> str:
    return str(conninfo_to_dict(url).get("dbname", ""))


def ensure_database(url: str) -> bool:
    """Create the database ``url`` names when it does not exist; True when it was created."""
    name = database_name(url)
    with connect(sibling_url(url, "postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


def drop_database(url: str) -> None:
    name = database_name(url)
    with connect(sibling_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
