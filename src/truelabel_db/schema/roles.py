"""Least privilege: the roles the app and read-only users run as, never the migration's owner.

- ``app`` (NOLOGIN, a group): reads and writes rows of the application's tables, reads the
  dashboard view, calls ``refresh_dashboard_stats()``; no DDL, no TRUNCATE, no table of
  ``truelabel_meta`` (the quarantine holds original values): only definer functions, the two
  that check the service's API keys and the two through which the cache's listener reads and
  trims the change log and asks how far it was trimmed (usage of the schema, execute on those five).
- ``readonly`` (NOLOGIN): SELECT on the same tables and the view, for reports and replicas.
- an optional LOGIN role that is a member of ``app``. Its password comes from an environment
  variable and is hashed here (SCRAM-SHA-256, by libpq) before it is sent, so the cleartext is
  neither on a command line nor in the server's statement log.

Partitions are reached through their parent, whose grants apply; partitions created later by
maintenance need nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from truelabel_db.errors import ConfigError, TargetError
from truelabel_db.postgres import absent_tables
from truelabel_db.schema.mapping import TABLES

APP_EXTRA_TABLES = ("cache_entries",)
DASHBOARD_VIEW = "brand_dashboard_stats"
REFRESH_FUNCTION = "refresh_dashboard_stats"
META_SCHEMA = "truelabel_meta"
# (function, its argument types): the only doors the app role has into truelabel_meta
APP_META_FUNCTIONS = (("lookup_api_key", "text"), ("has_active_api_key", ""),
                      ("cache_changes_since", "pg_snapshot"), ("trim_cache_changes", "interval"),
                      ("cache_log_trimmed_past", "pg_snapshot"))


@dataclass
class RolesReport:
    created: list[str] = field(default_factory=list)
    granted: list[str] = field(default_factory=list)


def app_tables() -> list[str]:
    return [t.target for t in TABLES] + list(APP_EXTRA_TABLES)


def ensure_roles(conn: psycopg.Connection, app: str = "truelabel_app", readonly: str = "truelabel_readonly",
                 login: str | None = None, password: str | None = None) -> RolesReport:
    """Create (if missing) and grant; safe to run again after the schema grows."""
    report = RolesReport()
    absent = absent_tables(conn, app_tables())
    if absent:
        raise TargetError(f"the schema is not in this database yet (no table {', '.join(absent[:5])}"
                          f"{', …' if len(absent) > 5 else ''}): grants name its tables, so run "
                          "`truelabel-db schema apply` (or a copy) first")
    try:
        with conn.transaction():
            for role in (app, readonly):
                _create_group(conn, role, report)
            _grant(conn, app, readonly, report)
            if login:
                _create_login(conn, login, app, password, report)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise TargetError(f"creating roles needs CREATEROLE (or a superuser): {exc.diag.message_primary}") from exc
    return report


def _exists(conn: psycopg.Connection, role: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None


def _create_group(conn: psycopg.Connection, role: str, report: RolesReport) -> None:
    if not _exists(conn, role):
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        report.created.append(role)


def _grant(conn: psycopg.Connection, app: str, readonly: str, report: RolesReport) -> None:
    tables = sql.SQL(", ").join(sql.Identifier(t) for t in app_tables())
    both = sql.SQL(", ").join(sql.Identifier(r) for r in (app, readonly))
    statements = [
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(both),
        sql.SQL("GRANT SELECT ON {}, {} TO {}").format(tables, sql.Identifier(DASHBOARD_VIEW), both),
        sql.SQL("GRANT INSERT, UPDATE, DELETE ON {} TO {}").format(tables, sql.Identifier(app)),
        sql.SQL("GRANT EXECUTE ON FUNCTION {}() TO {}").format(sql.Identifier(REFRESH_FUNCTION),
                                                               sql.Identifier(app)),
        # the service checks API keys, and its cache listener reads and trims the change log,
        # through definer functions only: no table of truelabel_meta becomes readable
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(META_SCHEMA), sql.Identifier(app)),
        *[sql.SQL("GRANT EXECUTE ON FUNCTION {}({}) TO {}").format(
            sql.Identifier(META_SCHEMA, name), sql.SQL(args), sql.Identifier(app))
          for name, args in APP_META_FUNCTIONS],
    ]
    for statement in statements:
        conn.execute(statement)
        report.granted.append(statement.as_string(conn))


def _create_login(conn: psycopg.Connection, login: str, app: str, password: str | None,
                  report: RolesReport) -> None:
    if login in (app,):
        raise ConfigError("the login role must differ from the group role")
    if not _exists(conn, login):
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(login)))
        report.created.append(login)
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(app), sql.Identifier(login)))
    if password:
        verifier = conn.pgconn.encrypt_password(password.encode(), login.encode(), b"scram-sha-256")
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(login), sql.Literal(verifier.decode())))
