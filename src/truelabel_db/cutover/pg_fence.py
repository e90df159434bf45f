"""The PostgreSQL fence: statement triggers that refuse the app's writes once SQLite is the
primary again (from the moment a rollback starts), symmetric with SQLite's fence after cutover.

A rollback installs it before replaying PostgreSQL's changes into SQLite: creating a trigger
waits for the table's in-flight writes to commit and admits none after, so the reverse
changelog is complete when the replay reads it. It stays after the rollback (an app still
pointed at PostgreSQL fails loudly instead of writing where no one reads); the next cutover's
switch removes it. The migration's own sessions set ``truelabel.migration_writer`` and pass.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from truelabel_db.postgres import one
from truelabel_db.schema.mapping import Mapping

TRIGGER = "truelabel_pg_fence"


def install_pg_fence(conn: psycopg.Connection, mapping: Mapping) -> None:
    with conn.transaction():
        for table in mapping.tables:
            conn.execute(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(sql.Identifier(TRIGGER), table.ident))
            conn.execute(sql.SQL("CREATE TRIGGER {} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {} "
                                 "FOR EACH STATEMENT EXECUTE FUNCTION truelabel_meta.refuse_app_writes()").format(
                sql.Identifier(TRIGGER), table.ident))


def remove_pg_fence(conn: psycopg.Connection, mapping: Mapping) -> None:
    with conn.transaction():
        for table in mapping.tables:
            conn.execute(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(sql.Identifier(TRIGGER), table.ident))


def pg_fence_installed(conn: psycopg.Connection, mapping: Mapping) -> bool:
    names = [t.ident.as_string(conn) for t in mapping.tables]
    count = one(conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname = %s AND tgrelid = ANY(%s::regclass[])",
                         (TRIGGER, names)))[0]
    return int(count) == len(names)
