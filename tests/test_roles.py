"""The runtime role can do what the app does and nothing more."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql

from tests.fix_db import ADMIN_URL
from tests.fix_twin import Pair
from truelabel_db.catalog import cache_changes
from truelabel_db.hotpaths import PostgresHotPaths, Scan
from truelabel_db.schema.roles import ensure_roles


@pytest.fixture
def roles(shared_pair: Pair) -> Iterator[dict[str, str]]:
    suffix = uuid.uuid4().hex[:8]
    names = {"app": f"tl_app_{suffix}", "readonly": f"tl_ro_{suffix}", "login": f"tl_login_{suffix}"}
    with psycopg.connect(shared_pair.url, autocommit=True) as conn:
        ensure_roles(conn, names["app"], names["readonly"], names["login"], password="s3cret-not-logged")
    yield names
    with psycopg.connect(shared_pair.url, autocommit=True) as conn:
        for role in (names["login"], names["app"], names["readonly"]):
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        for role in (names["login"], names["app"], names["readonly"]):
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def as_role(url: str, role: str) -> psycopg.Connection:
    return psycopg.connect(psycopg.conninfo.make_conninfo(url, user=role), autocommit=True)


def test_the_app_login_runs_every_hot_path_and_refreshes_the_view(shared_pair: Pair, roles: dict[str, str]) -> None:
    url = psycopg.conninfo.make_conninfo(shared_pair.url, user=roles["login"])
    paths = PostgresHotPaths(url, max_size=1)
    try:
        paths.refresh_dashboard()
        brand = paths.brands(1)[0]
        assert paths.product_list(10) and paths.brand_dashboard(brand) and paths.validation_queue(5)
        assert paths.scan(Scan("TL-ROLE-TEST", "10.0.0.1", "test")) is None
    finally:
        paths.close()


@pytest.mark.parametrize("statement", [
    "CREATE TABLE intruder (id int)",
    "DROP TABLE products",
    "TRUNCATE qr_code_access",
    "SELECT * FROM truelabel_meta.quarantine",
    "ALTER TABLE products ADD COLUMN x int",
])
def test_the_app_login_cannot_change_the_schema_or_read_the_bookkeeping(shared_pair: Pair, roles: dict[str, str],
                                                                         statement: str) -> None:
    with as_role(shared_pair.url, roles["login"]) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


def test_the_readonly_role_reads_but_never_writes(shared_pair: Pair, roles: dict[str, str]) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(roles["readonly"])))
    with as_role(shared_pair.url, roles["readonly"]) as conn:
        assert conn.execute("SELECT count(*) FROM products").fetchone()[0] > 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO qr_code_access (qr_code) VALUES ('x')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT refresh_dashboard_stats()")


def test_the_password_is_stored_hashed_and_roles_are_idempotent(shared_pair: Pair, roles: dict[str, str]) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        stored = admin.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (roles["login"],)).fetchone()[0]
    assert stored.startswith("SCRAM-SHA-256$") and "s3cret" not in stored
    with psycopg.connect(shared_pair.url, autocommit=True) as conn:
        again = ensure_roles(conn, roles["app"], roles["readonly"], roles["login"])
    assert again.created == []


def test_the_app_login_checks_an_api_key_but_cannot_read_the_keys(shared_pair: Pair, roles: dict[str, str]) -> None:
    from truelabel_db.catalog import api_keys

    with psycopg.connect(shared_pair.url, autocommit=True) as owner:
        token = api_keys.create(owner, ["lab"], "roles-test").token
    with as_role(shared_pair.url, roles["login"]) as conn:
        assert api_keys.scopes_of(conn, token) == ("lab",) and api_keys.any_active(conn)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT digest FROM truelabel_meta.api_keys")


def test_the_app_login_fires_the_cache_triggers_and_reads_the_change_log(shared_pair: Pair,
                                                                        roles: dict[str, str]) -> None:
    with as_role(shared_pair.url, roles["login"]) as conn:
        since = cache_changes.current_snapshot(conn)
        product = conn.execute("SELECT id FROM products LIMIT 1").fetchone()[0]
        conn.execute("UPDATE products SET name = name WHERE id = %s", (product,))
        changes = cache_changes.sweep(conn, since).changes
        assert [(c.table, c.key) for c in changes] == [("products", str(product))]
        cache_changes.trim(conn, timedelta(minutes=15))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM truelabel_meta.cache_changes")
        assert cache_changes.trimmed_past(conn, since) in (False, True)  # the app role may ask


@pytest.mark.parametrize("function", [f for f, _ in cache_changes.TRIGGERS.values()])
def test_the_app_login_cannot_attach_the_cache_trigger_functions_to_a_table_of_its_own(
        shared_pair: Pair, roles: dict[str, str], function: str) -> None:
    """Definer functions that log changes: attached to its own temp table and TRUNCATEd, they
    would empty every process's cache; and they still fire for the app's own writes."""
    with as_role(shared_pair.url, roles["login"]) as conn:
        conn.execute("CREATE TEMP TABLE mine (id int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(sql.SQL("CREATE TRIGGER flood AFTER TRUNCATE ON mine FOR EACH STATEMENT "
                                 "EXECUTE FUNCTION {}()").format(sql.Identifier("truelabel_meta", function)))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT truelabel_meta.cache_event_refreshed('brand_dashboard_stats')")
