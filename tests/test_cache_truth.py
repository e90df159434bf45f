"""The cache tells the truth whoever writes: a change made by plain SQL, by the follower or
through the service is read fresh through the service soon after, and a listener that lost its
connection serves nothing stale once it is back."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.fix_auth import ADMIN, ADMIN_HEADERS
from tests.fix_twin import Pair, migrated_pair
from tests.fix_wait import wait_until
from truelabel_db.cache import LayeredCache, keys
from truelabel_db.cache.listener import POSITION_KEY, DatabaseListener, ListenerConfig
from truelabel_db.catalog import cache_changes
from truelabel_db.follow import Follower
from truelabel_db.hotpaths import PostgresHotPaths
from truelabel_db.hotpaths.cached import CachedHotPaths
from truelabel_db.service import ServiceConfig, create_app

QUIET = dict(warm_on_start=False, refresh_interval=0, warm_interval=0)
FRESH_WITHIN = 10.0  # seconds: generous on a shared machine, and far below the TTLs (60 s, 300 s)


@pytest.fixture
def live_pair(tmp_path: Path) -> Iterator[Pair]:
    """A legacy file under change capture and its copy: the follower can carry its changes."""
    yield from migrated_pair(tmp_path, 0.01, 7, capture=True)


@contextmanager
def serving(url: str, redis_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(ServiceConfig(database=url, redis_url=redis_url, **QUIET, **ADMIN)),
                    headers=ADMIN_HEADERS) as client:
        yield client


def a_product(client: TestClient) -> dict[str, str]:
    return next(p for p in client.get("/products?limit=50").json() if p["qr_code"])


def name_of(client: TestClient, product_id: str) -> str:
    return str(client.get(f"/products/{product_id}").json()["name"])


def test_a_product_renamed_in_plain_sql_is_read_fresh_through_the_service(live_pair: Pair, redis_url: str) -> None:
    with serving(live_pair.url, redis_url) as client:
        product = a_product(client)
        assert name_of(client, product["id"]) == name_of(client, product["id"]) == product["name"]  # cached
        with psycopg.connect(live_pair.url, autocommit=True) as conn:
            conn.execute("UPDATE products SET name = 'Renamed by an operator' WHERE id = %s", (product["id"],))
        wait_until(lambda: name_of(client, product["id"]) == "Renamed by an operator",
                   "the product read after an UPDATE in SQL is fresh", FRESH_WITHIN)
        latest = {p["id"]: p["name"] for p in client.get("/products?limit=50").json()}
        assert latest[product["id"]] == "Renamed by an operator"


def test_a_product_changed_in_sqlite_and_carried_by_the_follower_is_read_fresh(live_pair: Pair,
                                                                               redis_url: str) -> None:
    with serving(live_pair.url, redis_url) as client:
        product = a_product(client)
        assert name_of(client, product["id"]) == product["name"]
        with sqlite3.connect(live_pair.legacy) as app:
            app.execute('UPDATE products SET name = ?, "updatedAt" = "updatedAt" + 1 WHERE id = ?',
                        ("Renamed by the app", product["id"]))
        follower = Follower(live_pair.legacy, live_pair.url)
        try:
            follower.run(until_caught_up=True)
        finally:
            follower.close()
        wait_until(lambda: name_of(client, product["id"]) == "Renamed by the app",
                   "the product read after the follower applied the app's change is fresh", FRESH_WITHIN)


def test_a_scan_through_the_service_is_counted_in_the_brands_analytics_within_the_window(
        live_pair: Pair, redis_url: str) -> None:
    with serving(live_pair.url, redis_url) as client:
        product = a_product(client)
        url = f"/brands/{product['user_id']}/analytics?days=30"
        before = client.get(url).json()["total_scans"]
        assert client.get(url).json()["total_scans"] == before  # cached
        assert client.post("/scans", json={"qr_code": product["qr_code"]}).json()["recorded"]
        wait_until(lambda: client.get(url).json()["total_scans"] == before + 1,
                   "the brand's analytics count the scan (the scan:create rule's 5 s window)", FRESH_WITHIN + 5)


@pytest.fixture
def cached(live_pair: Pair, redis_url: str) -> Iterator[CachedHotPaths]:
    paths = PostgresHotPaths(live_pair.url, max_size=4)
    cache = LayeredCache(redis_url, paths.pool).start()
    served = CachedHotPaths(paths, cache, listener=ListenerConfig(retry=1.0))
    assert served.listener is not None and served.listener.connected.wait(10)
    yield served
    served.close()
    cache.close()
    paths.close()


def rename(url: str, product_id: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE products SET name = %s WHERE id = %s", (name, product_id))


def test_a_listener_that_loses_its_connection_serves_nothing_stale_after_it_recovers(
        live_pair: Pair, cached: CachedHotPaths) -> None:
    listener = cached.listener
    assert listener is not None
    product_id = cached.paths.product_list(1)[0]["id"]
    old = cached.product(product_id)["name"]  # type: ignore[index]
    assert cached.cache.l2.get(keys.product(product_id))[0]  # type: ignore[union-attr]
    with psycopg.connect(live_pair.url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (listener.backend_pid,))
    wait_until(lambda: cached.cache.suspect, "the cache is suspect once the listener lost its connection")
    rename(live_pair.url, product_id, "Renamed while nobody listened")  # its notification is lost
    assert cached.product(product_id)["name"] == "Renamed while nobody listened"  # type: ignore[index]
    wait_until(lambda: listener.connected.is_set() and not cached.cache.suspect, "the listener is back")
    assert listener.reconnects >= 1
    in_redis = cached.cache.l2.get(keys.product(product_id))  # type: ignore[union-attr]
    assert not in_redis[0] or in_redis[1]["name"] != old     # the sweep dropped what the outage hid
    assert cached.product(product_id)["name"] == "Renamed while nobody listened"  # type: ignore[index]
    rename(live_pair.url, product_id, "Renamed after the recovery")
    wait_until(lambda: cached.product(product_id)["name"] == "Renamed after the recovery",  # type: ignore[index]
               "a change after the recovery is heard", FRESH_WITHIN)


def test_a_load_that_started_before_a_change_and_ended_after_it_is_not_cached(
        live_pair: Pair, cached: CachedHotPaths) -> None:
    product_id = cached.paths.product_list(1)[0]["id"]
    key = keys.product(product_id)
    listener = cached.listener
    assert listener is not None

    def load_across_a_change() -> object:
        value = cached.paths.product(product_id)      # read before the change
        sweeps = listener.sweeps
        rename(live_pair.url, product_id, "Changed during the load")
        wait_until(lambda: listener.sweeps > sweeps + 1, "the listener swept the change")
        return value

    stale = cached.cache.get_or_load(key, load_across_a_change, 300)
    assert stale["name"] != "Changed during the load"  # type: ignore[index]
    assert cached.cache.get(key) == (False, None)
    assert cached.product(product_id)["name"] == "Changed during the load"  # type: ignore[index]


def test_the_copy_fires_no_trigger_and_leaves_them_attached(live_pair: Pair) -> None:
    with psycopg.connect(live_pair.url, autocommit=True) as conn:
        assert cache_changes.installed(conn)
        snapshot = "1:1:"
        # the copy's refresh of the dashboard view announces itself; no row of the load does
        assert [c for c in cache_changes.sweep(conn, snapshot).changes if c.table != "brand_dashboard_stats"] == []


def test_a_dashboard_refreshed_by_the_maintenance_job_is_read_fresh(live_pair: Pair, cached: CachedHotPaths) -> None:
    """A materialized view has no triggers: whoever refreshes it announces the refresh."""
    from truelabel_db.maintain.refresh import refresh_dashboard

    with psycopg.connect(live_pair.url, autocommit=True) as conn:
        assert refresh_dashboard(conn, wait=True).status == "done"
        product_id, brand, status = conn.execute(
            "SELECT id::text, user_id::text, status::text FROM products ORDER BY id LIMIT 1").fetchone()
    before = cached.brand_dashboard(brand)["validated_products"]  # type: ignore[index]
    flipped, expected = ("PENDING", before - 1) if status == "VALIDATED" else ("VALIDATED", before + 1)
    listener = cached.listener
    assert listener is not None
    sweeps = listener.sweeps
    with psycopg.connect(live_pair.url, autocommit=True) as conn:
        conn.execute("UPDATE products SET status = %s WHERE id = %s", (flipped, product_id))
    wait_until(lambda: listener.sweeps > sweeps + 1, "the listener swept the product's change")
    assert cached.brand_dashboard(brand)["validated_products"] == before  # the view itself is not refreshed yet
    with psycopg.connect(live_pair.url, autocommit=True) as conn:
        assert refresh_dashboard(conn, wait=True).status == "done"
    wait_until(lambda: cached.brand_dashboard(brand)["validated_products"] == expected,  # type: ignore[index]
               "the dashboard read after the job's refresh is fresh", FRESH_WITHIN)


def test_the_maintenance_job_keeps_the_change_log_to_its_window(live_pair: Pair) -> None:
    """No service need run for the log to stay bounded: the job trims it (the follower too)."""
    from truelabel_db.maintain.cache_log import TrimCacheLog
    from truelabel_db.maintain.runner import run_job

    with psycopg.connect(live_pair.url, autocommit=True) as conn:
        conn.execute("UPDATE products SET name = name || '' WHERE id IN (SELECT id FROM products LIMIT 5)")
        assert run_job(conn, TrimCacheLog(keep=timedelta(minutes=15)), wait=True).detail["removed"] == 0
        old = conn.execute("UPDATE truelabel_meta.cache_changes SET at = at - interval '1 hour'").rowcount
        assert old >= 5
        an_hour_ago(conn)
        conn.execute("UPDATE products SET name = name || '' WHERE id IN (SELECT id FROM products LIMIT 1)")
        result = run_job(conn, TrimCacheLog(keep=timedelta(minutes=15)), wait=True)
        assert result.status == "done" and result.detail["removed"] == old
        assert conn.execute("SELECT count(*) FROM truelabel_meta.cache_changes").fetchone()[0] == 1


def an_hour_ago(conn: psycopg.Connection) -> None:
    """As if the log's rows and the trims' marks were an hour old (a test cannot wait 15 min)."""
    conn.execute("UPDATE truelabel_meta.cache_changes SET at = at - interval '1 hour'")
    conn.execute("UPDATE truelabel_meta.cache_trim_marks SET taken_at = taken_at - interval '1 hour'")


def test_a_change_committed_late_by_a_long_transaction_outlives_its_insert_time(live_pair: Pair) -> None:
    """The log is trimmed by commit time: a transaction open longer than the window commits rows
    already past it by insert time, which a trim by insert time deleted before any sweep."""
    with psycopg.connect(live_pair.url, autocommit=True) as admin, psycopg.connect(live_pair.url) as slow:
        since = cache_changes.current_snapshot(admin)
        slow.execute("UPDATE products SET name = 'Renamed slowly' WHERE id IN (SELECT id FROM products LIMIT 1)")
        admin.execute("CREATE TEMP TABLE elsewhere (x int)")  # other work commits meanwhile: logs nothing
        cache_changes.trim(admin)     # a mark: taken while the slow transaction is open
        slow.commit()
        an_hour_ago(admin)            # the mark, and the row's insert time, are past the window
        cache_changes.trim(admin)     # (what the copy logged before ``since`` may go)
        changes = cache_changes.sweep(admin, since).changes
        assert [(c.table, c.key) for c in changes] == [("products", changes[0].key)] and changes[0].key
        assert cache_changes.trimmed_past(admin, since) is False  # a listener at since lost nothing


def test_nobody_trims_the_log_to_less_than_five_minutes(live_pair: Pair) -> None:
    with psycopg.connect(live_pair.url, autocommit=True) as conn:
        since = cache_changes.current_snapshot(conn)
        conn.execute("UPDATE products SET name = name || '' WHERE id IN (SELECT id FROM products LIMIT 3)")
        for _ in range(2):
            assert cache_changes.trim(conn, timedelta(0)) == 0
        assert len(cache_changes.sweep(conn, since).changes) == 3


def test_a_listener_behind_a_trim_empties_the_cache_instead_of_trusting_the_log(live_pair: Pair) -> None:
    with psycopg.connect(live_pair.url, autocommit=True) as conn:
        since = cache_changes.current_snapshot(conn)
        conn.execute("UPDATE products SET name = name || '' WHERE id IN (SELECT id FROM products LIMIT 1)")
        cache_changes.trim(conn)
        an_hour_ago(conn)
        assert cache_changes.trim(conn) >= 1
        assert cache_changes.trimmed_past(conn, since) is True
        assert cache_changes.trimmed_past(conn, cache_changes.current_snapshot(conn)) is False


def test_without_the_triggers_the_cache_still_caches_as_before_database_events(live_pair: Pair,
                                                                               redis_url: str) -> None:
    with psycopg.connect(live_pair.url, autocommit=True) as conn:
        cache_changes.remove_triggers(conn)
    paths = PostgresHotPaths(live_pair.url, max_size=4)
    cache = LayeredCache(redis_url, paths.pool).start()
    served = CachedHotPaths(paths, cache)
    try:
        listener = served.listener
        assert listener is not None
        wait_until(lambda: listener.unavailable is not None, "the listener found no triggers")
        assert not cache.suspect  # before: suspect for ever, i.e. no caching at all
        product_id = paths.product_list(1)[0]["id"]
        served.product(product_id)
        assert cache.get(keys.product(product_id))[0]
    finally:
        served.close()
        cache.close()
        paths.close()


def test_triggers_installed_while_the_service_runs_turn_database_events_on(live_pair: Pair, redis_url: str) -> None:
    with psycopg.connect(live_pair.url, autocommit=True) as conn:
        cache_changes.remove_triggers(conn)
    paths = PostgresHotPaths(live_pair.url, max_size=2)
    cache = LayeredCache(redis_url, paths.pool).start()
    seen: list[str] = []
    listener = DatabaseListener(live_pair.url, cache, lambda changes: seen.extend(c.table for c in changes),
                                ListenerConfig(recheck=0.1)).start()
    try:
        wait_until(lambda: listener.unavailable is not None, "the listener found no triggers")
        cache.set("product:from-before-the-triggers", "cached without database events", 300)
        with psycopg.connect(live_pair.url, autocommit=True) as conn:
            cache_changes.install_triggers(conn)   # `schema apply` while the service runs
            assert cache.l2 is not None   # another process came on first and saved its position
            cache.l2.set_raw(POSITION_KEY, json.dumps({"snapshot": cache_changes.current_snapshot(conn),
                                                       "identity": cache_changes.database_identity(conn)}), 300)
            assert cache.l2.flush()   # ... having emptied the shared layers: this process's L1 is left
            wait_until(lambda: listener.unavailable is None and listener.connected.is_set(),
                       "the listener found the triggers")  # before: not until a restart
            assert cache.get("product:from-before-the-triggers") == (False, None)  # nothing says what changed
            conn.execute("UPDATE products SET name = name || ' (renamed)' "
                         "WHERE id IN (SELECT id FROM products LIMIT 1)")
        wait_until(lambda: "products" in seen, "the change was heard")
    finally:
        listener.stop()
        cache.close()
        paths.close()


def test_an_unexpected_error_in_the_listener_is_retried_from_the_same_position(live_pair: Pair,
                                                                               redis_url: str) -> None:
    paths = PostgresHotPaths(live_pair.url, max_size=2)
    cache = LayeredCache(redis_url, paths.pool).start()
    seen: list[list[str]] = []

    def apply(changes: list[cache_changes.Change]) -> None:
        seen.append([c.table for c in changes])
        if len(seen) == 1:
            raise RuntimeError("a bug in a rule")

    listener = DatabaseListener(live_pair.url, cache, apply, ListenerConfig(retry=0.05)).start()
    try:
        assert listener.connected.wait(10)
        rename(live_pair.url, paths.product_list(1)[0]["id"], "Renamed before the bug")
        wait_until(lambda: len(seen) >= 2, "the listener came back and swept again")  # before: its thread died
        assert seen[1] == seen[0] == ["products"]  # the position did not move past what was not applied
        wait_until(lambda: not cache.suspect and listener._thread.is_alive(), "the listener is back")
    finally:
        listener.stop()
        cache.close()
        paths.close()


def test_a_saved_position_of_another_database_history_empties_l2(live_pair: Pair, redis_url: str) -> None:
    paths = PostgresHotPaths(live_pair.url, max_size=2)
    cache = LayeredCache(redis_url, paths.pool).start()
    assert cache.l2 is not None
    with psycopg.connect(live_pair.url, autocommit=True) as conn:
        here = cache_changes.current_snapshot(conn)
        identity = cache_changes.database_identity(conn)
    listeners = []
    try:
        for position in ({"snapshot": here, "identity": "another cluster/1"},
                         {"snapshot": "999999999:999999999:", "identity": identity}):
            cache.l2.set("product:left-by-the-other-history", "stale", 300)
            cache.l2.set_raw(POSITION_KEY, json.dumps(position), 300)
            listener = DatabaseListener(live_pair.url, cache, lambda changes: None).start()
            listeners.append(listener)
            assert listener.connected.wait(10)
            assert cache.l2.get("product:left-by-the-other-history") == (False, None), position
            listener.stop()
        cache.l2.set("product:kept", "current", 300)
        listener = DatabaseListener(live_pair.url, cache, lambda changes: None).start()  # this history's
        listeners.append(listener)
        assert listener.connected.wait(10)
        assert cache.l2.get("product:kept") == (True, "current")
    finally:
        for listener in listeners:
            listener.stop()
        cache.close()
        paths.close()


def test_sweeps_are_coalesced_not_one_per_notification(live_pair: Pair, redis_url: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream of notifications is read by sweeps at least ``coalesce`` apart, not one each.

    What is checked is the gap the listener keeps between its sweeps (on a slower machine the
    gaps only grow), not how many sweeps a given machine happened to need."""
    coalesce, started = 0.1, []
    sweep = cache_changes.sweep

    def timed_sweep(conn: psycopg.Connection, since: str) -> cache_changes.Sweep:
        started.append(time.monotonic())
        return sweep(conn, since)

    monkeypatch.setattr(cache_changes, "sweep", timed_sweep)
    applied: list[int] = []
    paths = PostgresHotPaths(live_pair.url, max_size=2)
    cache = LayeredCache(redis_url, paths.pool).start()
    listener = DatabaseListener(live_pair.url, cache, lambda changes: applied.append(len(changes)),
                                ListenerConfig(coalesce=coalesce)).start()
    try:
        assert listener.connected.wait(10)
        started.clear()  # the catch-up sweep on connecting is not one of the loop's
        with psycopg.connect(live_pair.url, autocommit=True) as conn:
            product_id = conn.execute("SELECT id FROM products LIMIT 1").fetchone()[0]  # type: ignore[index]
            written, deadline = 0, time.monotonic() + 60
            while len(started) < 10 and time.monotonic() < deadline:  # a transaction, a notification
                conn.execute("UPDATE products SET name = %s WHERE id = %s", (f"Renamed {written}", product_id))
                written += 1
        wait_until(lambda: sum(applied) >= written, "every change applied")
        sweeps = started[:10]
        assert len(sweeps) == 10 and written > 10 * 10  # tens of notifications per sweep
        # Ten sweeps span at least nine gaps; 0.8, not 0.9: a busy machine may delay the first one's clock.
        assert sweeps[-1] - sweeps[0] >= 9 * coalesce * 0.8, sweeps
    finally:
        listener.stop()
        cache.close()
        paths.close()


def test_the_position_is_not_saved_while_l2_missed_an_invalidation(live_pair: Pair, cached: CachedHotPaths) -> None:
    listener, l2 = cached.listener, cached.cache.l2
    assert listener is not None and l2 is not None
    product_id = cached.paths.product_list(1)[0]["id"]
    saved = l2.get_raw(POSITION_KEY)
    l2.backoff = 3600.0
    l2._failed()                                  # Redis away: the sweep's invalidation cannot reach it
    sweeps = listener.sweeps
    rename(live_pair.url, product_id, "Renamed while Redis was away")
    wait_until(lambda: cached.cache.l2_dirty and listener.sweeps > sweeps + 1, "the change was swept")
    flush = l2.flush
    l2.flush = lambda: False                      # type: ignore[method-assign]  # Redis back, L2 not flushed yet
    l2._down_until = 0.0
    sweeps = listener.sweeps
    wait_until(lambda: listener.sweeps > sweeps + 2, "the listener swept again with Redis back")
    assert l2.get_raw(POSITION_KEY) == saved      # a process starting now sweeps from before the change
    l2.flush = flush                              # type: ignore[method-assign]
    wait_until(lambda: not cached.cache.l2_dirty and l2.get_raw(POSITION_KEY) != saved,
               "L2 was flushed once Redis answered, then the position moved")


def test_a_follower_on_a_schema_without_the_cache_log_goes_on_following(
        live_pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trimming the cache's log is housekeeping: a database whose schema predates it (the function
    missing) must not stop the follower, which trims every minute."""
    from truelabel_db.follow import follower as follower_module

    monkeypatch.setattr(follower_module, "CACHE_LOG_TRIM_EVERY", 0.0)
    with psycopg.connect(live_pair.url, autocommit=True) as conn:
        conn.execute("DROP FUNCTION truelabel_meta.trim_cache_changes(interval)")
        product_id = conn.execute("SELECT id::text FROM products ORDER BY id LIMIT 1").fetchone()[0]
    with sqlite3.connect(live_pair.legacy) as app:
        app.execute('UPDATE products SET name = ?, "updatedAt" = "updatedAt" + 1 WHERE id = ?',
                    ("Renamed without a trimmable log", product_id))
    follower = Follower(live_pair.legacy, live_pair.url)
    try:
        follower.run(until_caught_up=True)
    finally:
        follower.close()
    with psycopg.connect(live_pair.url, autocommit=True) as conn:
        assert conn.execute("SELECT name FROM products WHERE id = %s", (product_id,)).fetchone()[0] \
            == "Renamed without a trimmable log"


def test_a_refresh_on_a_schema_without_the_cache_log_is_still_done(live_pair: Pair) -> None:
    from truelabel_db.maintain.refresh import refresh_dashboard

    with psycopg.connect(live_pair.url, autocommit=True) as conn:
        conn.execute("DROP FUNCTION truelabel_meta.cache_event_refreshed(text) CASCADE")
        assert refresh_dashboard(conn, wait=True).status == "done"
