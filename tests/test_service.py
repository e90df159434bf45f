"""The reference service: the same answers on both databases, writes held at the gate, and a
primary switch followed without a restart."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import redis
from fastapi.testclient import TestClient

from tests.fix_auth import ADMIN, ADMIN_HEADERS
from tests.fix_twin import Pair
from tests.fix_wait import wait_until
from truelabel_db.cutover.fence import install_fence
from truelabel_db.cutover.gate import Gate
from truelabel_db.postgres import describe
from truelabel_db.service import ServiceConfig, create_app

QUIET = dict(warm_on_start=False, refresh_interval=0, warm_interval=0)


@contextmanager
def serving(database: str, **options: object) -> Iterator[TestClient]:
    with TestClient(create_app(ServiceConfig(database=database, **{**QUIET, **ADMIN, **options})),
                    headers=ADMIN_HEADERS) as client:   # as the operator: every endpoint
        yield client


def refresh(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT refresh_dashboard_stats()")


def scans_in_postgres(url: str, code: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM qr_code_access WHERE qr_code = %s", (code,)).fetchone()[0]


def scans_in_sqlite(pair: Pair, code: str) -> int:
    with sqlite3.connect(pair.legacy) as conn:
        return conn.execute('SELECT count(*) FROM qr_code_accesses WHERE "qrCode" = ?', (code,)).fetchone()[0]


def test_health_and_openapi_describe_the_service(shared_pair: Pair) -> None:
    with serving(shared_pair.url, cache=False) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["database"] == "postgresql"
        paths = client.get("/openapi.json").json()["paths"]
        assert {"/products", "/scans", "/brands/{brand_id}/dashboard", "/search", "/health"} <= set(paths)


def test_every_read_endpoint_answers_the_same_on_both_databases(shared_pair: Pair) -> None:
    refresh(shared_pair.url)
    with serving(str(shared_pair.legacy), cache=False) as legacy, serving(shared_pair.url, cache=False) as pg:
        brand = legacy.get("/products?limit=1").json()[0]["user_id"]
        word = legacy.get("/products?limit=1").json()[0]["name"].split()[0]
        for url in ("/products?limit=100", f"/brands/{brand}/dashboard", "/validations/queue?limit=50"):
            assert legacy.get(url).json() == pg.get(url).json(), url
        found = [{p["id"] for p in c.get("/search", params={"q": word, "limit": 200}).json()} for c in (legacy, pg)]
        assert found[0] == found[1] and found[0]
        assert legacy.get("/products/nope").status_code == pg.get("/products/nope").status_code == 404


def test_an_id_that_is_not_a_uuid_is_no_brand_and_an_unknown_uuid_a_brand_with_nothing(shared_pair: Pair) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    with serving(str(shared_pair.legacy), cache=False) as legacy, serving(shared_pair.url, cache=False) as pg:
        for client in (legacy, pg):
            assert client.get("/brands/not-a-uuid/analytics?days=7").status_code == 404
            assert client.get("/brands/not-a-uuid/dashboard").status_code == 404
            analytics = client.get(f"/brands/{unknown}/analytics?days=7")
            assert analytics.status_code == 200 and analytics.json()["total_scans"] == 0
            assert client.get(f"/brands/{unknown}/dashboard").status_code == 404
        assert legacy.get(f"/brands/{unknown}/analytics?days=7").json() == pg.get(
            f"/brands/{unknown}/analytics?days=7").json()


def test_a_scan_is_recorded_and_returns_the_product(shared_pair: Pair, redis_url: str) -> None:
    with serving(shared_pair.url, redis_url=redis_url) as client:
        product = client.get("/products?limit=20").json()
        code = next(p["qr_code"] for p in product if p["qr_code"])
        before = scans_in_postgres(shared_pair.url, code)
        answer = client.post("/scans", json={"qr_code": code}).json()
        assert answer["recorded"] and answer["product"]["qr_code"] == code
        unknown = client.post("/scans", json={"qr_code": "TL-UNKNOWN"})
        assert unknown.status_code == 404 and unknown.json()["recorded"] is False
        assert scans_in_postgres(shared_pair.url, code) == before + 1


def test_with_the_cache_a_repeated_read_is_a_hit_and_an_event_makes_it_fresh(shared_pair: Pair,
                                                                             redis_url: str) -> None:
    with serving(shared_pair.url, redis_url=redis_url) as client:
        first = client.get("/validations/queue?limit=5").json()
        assert client.get("/validations/queue?limit=5").json() == first
        assert 'truelabel_cache_hits_total{layer="l1"} 1' in client.get("/metrics").text
        item = first[0]
        with psycopg.connect(shared_pair.url, autocommit=True) as conn:  # the database's own event
            conn.execute("UPDATE validation_queue SET status = 'COMPLETED' WHERE id = %s", (item["id"],))
        wait_until(lambda: client.get("/validations/queue?limit=5").json()[0]["id"] != item["id"],
                   "the queue read after an UPDATE in SQL is fresh", seconds=10)


def test_a_write_waits_while_the_gate_is_up_and_lands_when_it_comes_down(shared_pair: Pair,
                                                                         redis_url: str) -> None:
    gate = Gate(redis.Redis.from_url(redis_url, decode_responses=True))
    with serving(shared_pair.url, redis_url=redis_url, cache=False, gate_wait=10) as client:
        code = next(p["qr_code"] for p in client.get("/products?limit=20").json() if p["qr_code"])
        before = scans_in_postgres(shared_pair.url, code)
        gate.raise_(ttl_ms=30_000)
        answers: list[int] = []
        writer = threading.Thread(target=lambda: answers.append(
            client.post("/scans", json={"qr_code": code}).status_code))
        writer.start()
        wait_until(lambda: client.get("/health").json()["gate_waits"] == 1, "the scan waits at the gate")
        assert answers == [] and scans_in_postgres(shared_pair.url, code) == before   # held, not failed
        gate.lower()
        writer.join(timeout=10)
        assert answers == [200] and scans_in_postgres(shared_pair.url, code) == before + 1
        assert client.get("/health").json()["gate_waits"] == 1


def test_a_write_held_longer_than_it_may_wait_is_refused_with_retry_after(shared_pair: Pair,
                                                                         redis_url: str) -> None:
    gate = Gate(redis.Redis.from_url(redis_url, decode_responses=True))
    with serving(shared_pair.url, redis_url=redis_url, cache=False, gate_wait=0.3) as client:
        gate.raise_(ttl_ms=30_000)
        try:
            refused = client.post("/scans", json={"qr_code": "TL-00000001"})
        finally:
            gate.lower()
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "cutover" in refused.json()["detail"]


def test_the_service_follows_a_published_primary_switch_without_restarting(fresh_pair: Pair,
                                                                           redis_url: str) -> None:
    gate = Gate(redis.Redis.from_url(redis_url, decode_responses=True))
    gate.publish_primary("sqlite", str(fresh_pair.legacy))
    with serving(str(fresh_pair.legacy), redis_url=redis_url, postgres_url=fresh_pair.url) as client:
        code = next(p["qr_code"] for p in client.get("/products?limit=20").json() if p["qr_code"])
        assert client.get("/health").json()["database"] == "sqlite"
        before = scans_in_sqlite(fresh_pair, code)
        client.post("/scans", json={"qr_code": code})
        assert scans_in_sqlite(fresh_pair, code) == before + 1
        in_sqlite, in_pg = scans_in_sqlite(fresh_pair, code), scans_in_postgres(fresh_pair.url, code)

        gate.publish_primary("postgresql", describe(fresh_pair.url))
        deadline = time.monotonic() + 5
        while client.get("/health").json()["database"] != "postgresql" and time.monotonic() < deadline:
            time.sleep(0.05)
        health = client.get("/health").json()
        assert health["database"] == "postgresql" and health["switches"] == 1
        assert client.post("/scans", json={"qr_code": code}).status_code == 200
        assert (scans_in_sqlite(fresh_pair, code), scans_in_postgres(fresh_pair.url, code)) == (in_sqlite, in_pg + 1)


def test_a_write_the_fence_refuses_goes_to_the_new_primary_instead(fresh_pair: Pair, redis_url: str) -> None:
    gate = Gate(redis.Redis.from_url(redis_url, decode_responses=True))
    gate.publish_primary("sqlite", str(fresh_pair.legacy))
    with serving(str(fresh_pair.legacy), redis_url=redis_url, postgres_url=fresh_pair.url, cache=False,
                 follow_interval=3600) as client:   # the watcher is asleep: only the fence can tell
        code = next(p["qr_code"] for p in client.get("/products?limit=20").json() if p["qr_code"])
        in_pg = scans_in_postgres(fresh_pair.url, code)
        install_fence(fresh_pair.legacy)
        threading.Timer(0.2, lambda: gate.publish_primary("postgresql", describe(fresh_pair.url))).start()
        assert client.post("/scans", json={"qr_code": code}).status_code == 200
        assert scans_in_postgres(fresh_pair.url, code) == in_pg + 1


def test_on_the_async_pool_the_service_answers_as_on_threads(shared_pair: Pair) -> None:
    refresh(shared_pair.url)
    with serving(shared_pair.url, cache=False) as threads, serving(shared_pair.url, cache=False,
                                                                   async_pool=True) as pooled:
        brand = threads.get("/products?limit=1").json()[0]["user_id"]
        for url in ("/products?limit=20", f"/brands/{brand}/dashboard", "/validations/queue?limit=10",
                    f"/brands/{brand}/analytics?days=7"):
            assert threads.get(url).json() == pooled.get(url).json(), url
        code = next(p["qr_code"] for p in pooled.get("/products?limit=20").json() if p["qr_code"])
        before = scans_in_postgres(shared_pair.url, code)
        assert pooled.post("/scans", json={"qr_code": code}).json()["product"]["qr_code"] == code
        assert scans_in_postgres(shared_pair.url, code) == before + 1


def test_a_scan_that_is_not_one_is_refused_with_422_and_nothing_is_recorded(shared_pair: Pair) -> None:
    with psycopg.connect(shared_pair.url) as conn:
        before = conn.execute("SELECT count(*) FROM qr_code_access").fetchone()[0]
    with serving(shared_pair.url, cache=False) as client:
        for body in (b"{nope", b'["TL-1"]', b"{}", b'{"qr_code": ""}', b'{"qr_code": 7}',
                     b'{"qr_code": "' + b"X" * 201 + b'"}', b'{"qr_code": "TL-1\\u0000"}',
                     b'{"qr_code": "TL-1", "user_agent": 5}'):
            answer = client.post("/scans", content=body, headers={"Content-Type": "application/json"})
            assert answer.status_code == 422 and answer.json()["detail"], body
        huge = client.post("/scans", content=b'{"qr_code": "TL-1", "pad": "' + b"x" * 20_000 + b'"}')
        assert huge.status_code == 413
        assert "/scans" in client.get("/openapi.json").json()["paths"]
    with psycopg.connect(shared_pair.url) as conn:
        assert conn.execute("SELECT count(*) FROM qr_code_access").fetchone()[0] == before
