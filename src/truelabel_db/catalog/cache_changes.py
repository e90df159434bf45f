"""The database's own announcements of change (``truelabel_meta.cache_changes``).

Statement-level triggers on the tables the cached hot paths read append what changed (the
functions are in ``schema/sql/pre_007_cache_changes.sql``) and notify ``CHANNEL``. Here: attach
and detach them, and read the log as a listener does, by snapshot.

Statement-level with transition tables rather than per row: the follower and the app's batch
writes change many rows in one statement, and a scan group commit inserts up to 1000 rows at
once; one trigger call per statement logs each brand or product once, where a row trigger paid a
function call and an insert per row. Scans log only their distinct codes; ``sweep`` finds
their brands, so that the hottest write pays no join (BENCHMARKS.md, ``bench cache``).

The copy detaches them before it loads and attaches them after (``copy.finalize``): the
initial load fires nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from truelabel_db.postgres import one

CHANNEL = "truelabel_cache"
SCHEMA = "truelabel_meta"
# table -> (its trigger function, the events it is attached for)
TRIGGERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "products": ("cache_event_products", ("INSERT", "UPDATE", "DELETE")),
    "validations": ("cache_event_validations", ("INSERT", "UPDATE", "DELETE")),
    "validation_queue": ("cache_event_validation_queue", ("INSERT", "UPDATE", "DELETE")),
    "users": ("cache_event_users", ("INSERT", "UPDATE", "DELETE")),
    "qr_code_access": ("cache_event_scans", ("INSERT", "DELETE")),
}
_TRANSITIONS = {"INSERT": "REFERENCING NEW TABLE AS new_rows",
                "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
                "DELETE": "REFERENCING OLD TABLE AS old_rows"}
TRIGGER_PREFIX = "truelabel_cache_"


@dataclass(frozen=True)
class Change:
    """One logged change: what the invalidation rules need of it."""

    table: str
    key: str | None
    brand: str | None
    qr: str | None
    at: datetime


@dataclass(frozen=True)
class Sweep:
    """The changes committed between two snapshots, and the later snapshot (the new position)."""

    snapshot: str
    changes: list[Change]
    now: datetime


def _trigger(event: str) -> sql.Identifier:
    return sql.Identifier(TRIGGER_PREFIX + event.lower())


def _present(conn: psycopg.Connection, table: str) -> bool:
    return one(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{table}",)))[0] is True


def install_triggers(conn: psycopg.Connection) -> list[str]:
    """Attach the triggers (again) to every table present; the tables they are on."""
    done = []
    with conn.transaction():
        for table, (function, events) in TRIGGERS.items():
            if not _present(conn, table):
                continue
            target = sql.Identifier("public", table)
            for event in (*events, "TRUNCATE"):
                conn.execute(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(_trigger(event), target))
                conn.execute(sql.SQL("CREATE TRIGGER {} AFTER {} ON {} {} FOR EACH STATEMENT EXECUTE FUNCTION {}()")
                             .format(_trigger(event), sql.SQL(event), target, sql.SQL(_TRANSITIONS.get(event, "")),
                                     sql.Identifier(SCHEMA, function)))
            done.append(table)
    return done


def remove_triggers(conn: psycopg.Connection) -> None:
    with conn.transaction():
        for table, (_, events) in TRIGGERS.items():
            if _present(conn, table):
                for event in (*events, "TRUNCATE"):
                    conn.execute(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                        _trigger(event), sql.Identifier("public", table)))


def installed(conn: psycopg.Connection) -> bool:
    """Whether the products table announces its changes (the log is read only then)."""
    return one(conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = %s AND tgrelid = to_regclass('public.products'))",
        (TRIGGER_PREFIX + "update",)))[0] is True


def current_snapshot(conn: psycopg.Connection) -> str:
    return str(one(conn.execute("SELECT pg_current_snapshot()::text"))[0])


def sweep(conn: psycopg.Connection, since: str) -> Sweep:
    """Everything committed after ``since`` and before now, read in one statement's snapshot."""
    rows = conn.execute(
        "SELECT pg_current_snapshot()::text, clock_timestamp(), c.tbl, c.key, c.brand, c.qr, c.at "
        "FROM (SELECT 1) one LEFT JOIN truelabel_meta.cache_changes_since(%s::pg_snapshot) c ON true",
        (since,)).fetchall()
    changes = [Change(r[2], r[3], r[4], r[5], r[6]) for r in rows if r[2] is not None]
    return Sweep(str(rows[0][0]), changes, rows[0][1])


def oldest_kept(conn: psycopg.Connection, keep: timedelta) -> datetime:
    """From when on the log is complete: changes older than this may have been trimmed."""
    return one(conn.execute("SELECT clock_timestamp() - %s", (keep,)))[0]  # type: ignore[no-any-return]


def trimmed_past(conn: psycopg.Connection, since: str) -> bool:
    """Whether a trim may have deleted changes committed after the snapshot ``since`` (False on a
    schema applied before trims were marked: there, only the listener's clock can tell)."""
    try:
        with conn.transaction():
            return one(conn.execute("SELECT truelabel_meta.cache_log_trimmed_past(%s::pg_snapshot)",
                                    (since,)))[0] is True
    except psycopg.errors.UndefinedFunction:
        return False


def database_identity(conn: psycopg.Connection) -> str:
    """Which database's history a snapshot belongs to: the cluster's system identifier (a new
    cluster, a restore with initdb) and the database's oid (another database of it). A physical
    restore keeps both; its snapshots then go back in time, which ``snapshot_ahead`` sees."""
    oid = one(conn.execute("SELECT oid::text FROM pg_database WHERE datname = current_database()"))[0]
    try:
        with conn.transaction():
            system = one(conn.execute("SELECT system_identifier::text FROM pg_control_system()"))[0]
    except psycopg.errors.InsufficientPrivilege:
        system = "?"
    return f"{system}/{oid}"


def snapshot_ahead(conn: psycopg.Connection, snapshot: str) -> bool:
    """Whether ``snapshot`` names transactions this database has not reached (another history)."""
    return one(conn.execute("SELECT pg_snapshot_xmax(%s::pg_snapshot) > pg_snapshot_xmax(pg_current_snapshot())",
                            (snapshot,)))[0] is True


def announce_refresh(conn: psycopg.Connection, view: str) -> None:
    """A materialized view was refreshed: it has no triggers, so its refresher says so. A schema
    applied before the cache's log existed has nobody to tell: the refresh itself stands."""
    try:
        with conn.transaction():
            conn.execute("SELECT truelabel_meta.cache_event_refreshed(%s)", (view,))
    except psycopg.errors.UndefinedFunction:
        pass


KEEP = timedelta(minutes=15)  # the log's window; a listener away longer empties its cache
MIN_KEEP = timedelta(minutes=5)  # trim_cache_changes never keeps less, whoever calls it


def trim(conn: psycopg.Connection, keep: timedelta = KEEP) -> int:
    return int(one(conn.execute("SELECT truelabel_meta.trim_cache_changes(%s)", (keep,)))[0])
