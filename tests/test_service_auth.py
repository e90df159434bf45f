"""Credentials and limits of the service: who may read what, and what an anonymous client may send."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.fix_auth import ADMIN, ADMIN_HEADERS, bearer, new_key
from tests.fix_twin import Pair
from truelabel_db.catalog import api_keys
from truelabel_db.service import ServiceConfig, create_app
from truelabel_db.service.limits import RateLimiter

QUIET = dict(warm_on_start=False, refresh_interval=0, warm_interval=0, cache=False)
PROTECTED = ("/brands/{brand}/analytics", "/brands/{brand}/dashboard", "/validations/queue", "/metrics")


@contextmanager
def serving(database: str, **options: object) -> Iterator[TestClient]:
    with TestClient(create_app(ServiceConfig(database=database, **{**QUIET, **options}))) as client:
        yield client


def two_brands(url: str) -> tuple[str, str]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT refresh_dashboard_stats()")
        first, second = (str(r[0]) for r in conn.execute(
            "SELECT id FROM users WHERE role = 'BRAND' ORDER BY id LIMIT 2"))
    return first, second


def test_without_a_key_only_public_data_is_served(shared_pair: Pair) -> None:
    brand, _ = two_brands(shared_pair.url)
    with serving(shared_pair.url) as client:
        assert client.get("/products?limit=5").status_code == 200
        assert client.get("/health").json() == {"status": "ok"}
        for path in PROTECTED:
            refused = client.get(path.format(brand=brand))
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer", path
        assert client.post("/scans/batch", json={"scans": []}).status_code == 401


def test_a_brand_key_reads_its_own_analytics_and_dashboard_and_nothing_else(shared_pair: Pair) -> None:
    mine, theirs = two_brands(shared_pair.url)
    token = new_key(shared_pair.url, [f"brand:{mine}"])
    with serving(shared_pair.url, auth_cache_seconds=0) as client:
        for path in ("/brands/{brand}/analytics", "/brands/{brand}/dashboard"):
            assert client.get(path.format(brand=mine), headers=bearer(token)).status_code == 200
            assert client.get(path.format(brand=theirs), headers=bearer(token)).status_code == 403
            assert client.get(path.format(brand=mine), headers={"X-API-Key": token}).status_code == 200
        assert client.get("/validations/queue", headers=bearer(token)).status_code == 403
        assert client.get("/metrics", headers=bearer(token)).status_code == 403


def test_the_queue_needs_a_lab_service_or_admin_key(shared_pair: Pair) -> None:
    brand, _ = two_brands(shared_pair.url)
    lab, service = new_key(shared_pair.url, ["lab"]), new_key(shared_pair.url, ["service"])
    with serving(shared_pair.url, **ADMIN) as client:
        assert client.get("/validations/queue", headers=bearer(lab)).status_code == 200
        assert client.get(f"/brands/{brand}/dashboard", headers=bearer(lab)).status_code == 403
        for headers in (bearer(service), ADMIN_HEADERS):
            assert client.get("/validations/queue", headers=headers).status_code == 200
            assert client.get(f"/brands/{brand}/dashboard", headers=headers).status_code == 200
            assert "gate_waits" in client.get("/health", headers=headers).json()
            assert client.get("/metrics", headers=headers).status_code == 200


def test_a_revoked_or_made_up_key_is_refused(shared_pair: Pair) -> None:
    token = new_key(shared_pair.url, ["lab"])
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with serving(shared_pair.url, auth_cache_seconds=0) as client:
        assert client.get("/validations/queue", headers=bearer(token)).status_code == 200
        for bad in (forged, "tlk_nope", "x" * 5000):
            assert client.get("/validations/queue", headers=bearer(bad)).status_code == 401
        with psycopg.connect(shared_pair.url, autocommit=True) as conn:
            assert api_keys.revoke(conn, api_keys.prefix_of(token) or "")
        assert client.get("/validations/queue", headers=bearer(token)).status_code == 401


def test_only_a_digest_of_the_token_is_stored(shared_pair: Pair) -> None:
    token = new_key(shared_pair.url, ["service"], label="stored-digest")
    secret = token.rsplit("_", 1)[1]
    with psycopg.connect(shared_pair.url) as conn:
        row = conn.execute("SELECT k::text FROM truelabel_meta.api_keys k WHERE label = 'stored-digest'").fetchone()
    assert row is not None and secret not in row[0] and token not in row[0]


def test_on_sqlite_keys_come_from_the_configured_postgresql(shared_pair: Pair) -> None:
    lab = new_key(shared_pair.url, ["lab"])
    with serving(str(shared_pair.legacy), postgres_url=shared_pair.url) as client:
        assert client.get("/validations/queue", headers=bearer(lab)).status_code == 200
    with serving(str(shared_pair.legacy), **ADMIN) as client:   # no PostgreSQL: the admin token only
        assert client.get("/validations/queue", headers=bearer(lab)).status_code == 401
        assert client.get("/validations/queue", headers=ADMIN_HEADERS).status_code == 200


def test_scans_past_the_rate_of_one_address_answer_429_with_retry_after(shared_pair: Pair) -> None:
    with serving(shared_pair.url, scan_rate=0.01, scan_burst=2) as client:
        code = next(p["qr_code"] for p in client.get("/products?limit=20").json() if p["qr_code"])
        answers = [client.post("/scans", json={"qr_code": code}) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert int(answers[2].headers["retry-after"]) >= 1
        assert client.get("/health", headers=bearer(new_key(shared_pair.url, ["service"]))).json()["rate_limited"] == 1


def test_each_address_has_its_own_bucket_which_refills_at_the_rate() -> None:
    limiter = RateLimiter(rate=2.0, burst=1)
    assert limiter.take("10.0.0.1", now=0.0) == 0.0
    assert limiter.take("10.0.0.1", now=0.0) == pytest.approx(0.5)
    assert limiter.take("10.0.0.2", now=0.0) == 0.0
    assert limiter.take("10.0.0.1", now=0.5) == 0.0
    assert RateLimiter(rate=0, burst=1).take("10.0.0.1") == 0.0


def test_oversized_bodies_and_identifiers_are_refused_before_the_database(shared_pair: Pair) -> None:
    with serving(shared_pair.url, **ADMIN) as client:
        body = b'{"qr_code": "TL-1", "pad": "' + b"x" * 4096 + b'"}'
        assert client.post("/scans", content=body).status_code == 413
        long_id = "a" * 65
        assert client.get(f"/products/{long_id}").status_code == 422
        for path in (f"/brands/{long_id}/dashboard", f"/brands/{long_id}/analytics"):
            assert client.get(path, headers=ADMIN_HEADERS).status_code == 422
