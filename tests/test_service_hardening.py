"""The security review's findings on the service, each pinned by a test: odd id spellings, auth
lookups under a flood of made-up tokens, bodies that never end, secrets in children's
environments, rate-limit buckets an attacker can multiply, and what an anonymous error says."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import PoolTimeout

from tests.fix_auth import ADMIN, ADMIN_HEADERS, bearer, new_key
from tests.fix_twin import Pair
from truelabel_db.catalog import api_keys
from truelabel_db.errors import NoCredentialsError
from truelabel_db.hotpaths import PostgresHotPaths
from truelabel_db.service import ServiceConfig, create_app, server
from truelabel_db.service import auth as auth_module
from truelabel_db.service.auth import ADMIN_TOKEN_ENV, Authenticator
from truelabel_db.service.limits import MAX_SCAN_BODY, RateLimiter

QUIET = dict(warm_on_start=False, refresh_interval=0, warm_interval=0, cache=False)
SIDES = ["postgresql", "sqlite"]


@contextmanager
def serving(database: str, **options: object) -> Iterator[TestClient]:
    with TestClient(create_app(ServiceConfig(database=database, **{**QUIET, **options}))) as client:
        yield client


def database_of(pair: Pair, side: str) -> str:
    return pair.url if side == "postgresql" else str(pair.legacy)


def made_up_token(n: int) -> str:
    return f"tlk_{n:012x}_{'A' * 43}"


# -- 4: ids in paths ----------------------------------------------------------------------------

@pytest.mark.parametrize("side", SIDES)
def test_ids_in_paths_are_canonicalised_and_odd_spellings_are_404_never_500(shared_pair: Pair, side: str) -> None:
    with psycopg.connect(shared_pair.url, autocommit=True) as conn:
        conn.execute("SELECT refresh_dashboard_stats()")
    with serving(database_of(shared_pair, side), **ADMIN) as client:
        product = client.get("/products?limit=1").json()[0]
        pid, brand = product["id"], product["user_id"]
        canonical = client.get(f"/products/{pid}").json()
        dashboard = client.get(f"/brands/{brand}/dashboard", headers=ADMIN_HEADERS)
        for spelling in (pid.upper(), pid.replace("-", ""), pid.replace("-", "").upper()):
            assert client.get(f"/products/{spelling}").json() == canonical, spelling
        upper = client.get(f"/brands/{brand.upper().replace('-', '')}/dashboard", headers=ADMIN_HEADERS)
        assert (upper.status_code, upper.json()) == (dashboard.status_code, dashboard.json())
        for odd in (f"urn:uuid:{pid}", "{" + pid + "}", pid[:-1] + "g", pid + "0", " " + pid, "nope"):
            assert client.get(f"/products/{odd}").status_code == 404, odd
            for path in (f"/brands/{odd}/dashboard", f"/brands/{odd}/analytics"):
                assert client.get(path, headers=ADMIN_HEADERS).status_code == 404, path


def test_a_brand_key_reads_its_brand_however_the_id_is_spelled(shared_pair: Pair) -> None:
    with psycopg.connect(shared_pair.url) as conn:
        brand = str(conn.execute("SELECT id FROM users WHERE role = 'BRAND' ORDER BY id LIMIT 1").fetchone()[0])
    token = new_key(shared_pair.url, [f"brand:{brand}"])
    with serving(shared_pair.url) as client:
        for spelling in (brand.upper(), brand.replace("-", "")):
            assert client.get(f"/brands/{spelling}/analytics", headers=bearer(token)).status_code == 200


def test_a_database_error_reaches_an_anonymous_client_without_its_details(shared_pair: Pair,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(exc: Exception) -> Any:
        def product(self: object, product_id: str) -> None:
            raise exc
        return product

    with serving(shared_pair.url) as client:
        pid = client.get("/products?limit=1").json()[0]["id"]
        monkeypatch.setattr(PostgresHotPaths, "product", failing(psycopg.OperationalError("SECRET-DETAIL gone")))
        answer = client.get(f"/products/{pid}")
        assert answer.status_code == 503 and answer.headers["retry-after"] and "SECRET" not in answer.text
        monkeypatch.setattr(PostgresHotPaths, "product", failing(psycopg.DataError("SECRET-DETAIL bad")))
        answer = client.get(f"/products/{pid}")
        assert answer.status_code == 500 and "SECRET" not in answer.text


def test_a_scan_the_database_refuses_is_422_without_the_database_message(shared_pair: Pair,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: object, scans: object) -> None:
        raise psycopg.DataError('invalid input syntax for type inet: "SECRET-DETAIL"')

    with serving(shared_pair.url) as client:
        code = next(p["qr_code"] for p in client.get("/products?limit=20").json() if p["qr_code"])
        monkeypatch.setattr(PostgresHotPaths, "scan_many", refuse)
        answer = client.post("/scans", json={"qr_code": code})
    assert answer.status_code == 422 and "SECRET" not in answer.text and "inet" not in answer.text


# -- 12: key lookups ---------------------------------------------------------------------------

def test_a_token_with_a_trailing_newline_is_not_well_formed() -> None:
    token = made_up_token(1)
    assert api_keys.prefix_of(token) == "000000000001"
    assert api_keys.prefix_of(token + "\n") is None


def _authenticator(**options: object) -> Authenticator:
    return Authenticator(ServiceConfig(database="postgresql://127.0.0.1:1/nowhere", **options))  # type: ignore[arg-type]


def test_made_up_tokens_do_not_evict_a_real_keys_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    real, lookups = f"tlk_{'f' * 12}_{'B' * 43}", []

    def lookup(self: Authenticator, token: str) -> tuple[str, ...] | None:
        lookups.append(token)
        return ("lab",) if token == real else None

    monkeypatch.setattr(Authenticator, "_lookup", lookup)
    auth = _authenticator(auth_cache_seconds=600)

    async def run() -> None:
        assert await auth.principal(real) is not None
        for n in range(10_001):
            assert await auth.principal(made_up_token(n)) is None
        before = len(lookups)
        assert await auth.principal(real) is not None
        assert len(lookups) == before, "the real key's verdict was forgotten"

    asyncio.run(run())


def test_key_lookups_run_on_a_small_limiter_of_their_own_and_excess_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    release, running, most = threading.Event(), [0], [0]
    lock = threading.Lock()

    def lookup(self: Authenticator, token: str) -> tuple[str, ...] | None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait()
        with lock:
            running[0] -= 1
        return None

    monkeypatch.setattr(Authenticator, "_lookup", lookup)
    auth = _authenticator(auth_cache_seconds=0)
    limit = auth_module.MAX_LOOKUPS_WAITING

    async def run() -> list[object]:
        tasks = [asyncio.ensure_future(auth.principal(made_up_token(n))) for n in range(limit + 8)]
        while running[0] < auth_module.LOOKUP_THREADS:
            await asyncio.sleep(0.01)
        release.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(run())
    refused = [r for r in results if isinstance(r, auth_module.AuthUnavailable)]
    assert len(refused) == 8 and all(r is None for r in results if r not in refused)
    assert most[0] <= auth_module.LOOKUP_THREADS


def test_failed_authentications_from_one_address_are_limited(shared_pair: Pair) -> None:
    with serving(shared_pair.url, auth_failures_per_minute=3, **ADMIN) as client:
        for n in range(3):
            assert client.get("/validations/queue", headers=bearer(made_up_token(n))).status_code == 401
        limited = client.get("/validations/queue", headers=bearer(made_up_token(99)))
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert client.get("/validations/queue", headers=ADMIN_HEADERS).status_code == 200   # no lookup needed
    with TestClient(create_app(ServiceConfig(database=shared_pair.url, auth_failures_per_minute=3, **QUIET)),
                    client=("10.9.9.9", 1234)) as other:
        assert other.get("/validations/queue", headers=bearer(made_up_token(5))).status_code == 401


def test_a_lookup_that_cannot_reach_the_database_is_503_with_retry_after(shared_pair: Pair,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(self: Authenticator, token: str) -> None:
        raise PoolTimeout("couldn't get a connection after 5.00 sec")

    monkeypatch.setattr(Authenticator, "_lookup", unreachable)
    with serving(shared_pair.url) as client:
        answer = client.get("/validations/queue", headers=bearer(made_up_token(7)))
    assert answer.status_code == 503 and int(answer.headers["retry-after"]) >= 1


# -- 13: bodies --------------------------------------------------------------------------------

class Receiver:
    """A client that would send ``chunks`` chunks of ``size`` bytes, counting what is read."""

    def __init__(self, chunks: int, size: int) -> None:
        self.chunks, self.chunk, self.calls = chunks, b"x" * size, 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        return {"type": "http.request", "body": self.chunk, "more_body": self.calls < self.chunks}


async def drive(app: Any, path: str, receive: Receiver, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "scheme": "http", "server": ("testserver", 80), "client": ("10.1.2.3", 5555),
             "http_version": "1.1", "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}


def test_a_scan_body_is_refused_on_its_length_before_it_is_read() -> None:
    app = create_app(ServiceConfig(database="postgresql://127.0.0.1:1/nowhere", **QUIET))  # type: ignore[arg-type]
    receive = Receiver(1000, 1024)
    status, headers = asyncio.run(drive(app, "/scans", receive, {"content-length": "10000000"}))
    assert status == 413 and receive.calls == 0 and headers.get("connection") == "close"


def test_an_endless_scan_body_is_read_no_further_than_the_limit() -> None:
    app = create_app(ServiceConfig(database="postgresql://127.0.0.1:1/nowhere", **QUIET))  # type: ignore[arg-type]
    receive = Receiver(1000, 1024)
    status, headers = asyncio.run(drive(app, "/scans", receive, {"transfer-encoding": "chunked"}))
    assert status == 413 and headers.get("connection") == "close"
    assert receive.calls <= MAX_SCAN_BODY // 1024 + 1


def test_the_rate_limit_answers_before_the_body_is_read() -> None:
    app = create_app(ServiceConfig(database="postgresql://127.0.0.1:1/nowhere", scan_rate=0.001, scan_burst=1,
                                   **QUIET))  # type: ignore[arg-type]
    asyncio.run(drive(app, "/scans", Receiver(1000, 1024), {}))   # spends the address's one token
    receive = Receiver(1000, 1024)
    status, headers = asyncio.run(drive(app, "/scans", receive, {}))
    assert status == 429 and receive.calls == 0 and int(headers["retry-after"]) >= 1


def test_batch_and_fallback_bodies_are_bounded_too(shared_pair: Pair) -> None:
    from truelabel_db.service.app import MAX_BATCH_BYTES

    with serving(shared_pair.url, **ADMIN) as client:
        api = client.app.api   # type: ignore[attr-defined]
        chunk = 64 * 1024
        batch = Receiver(4 * MAX_BATCH_BYTES // chunk, chunk)
        status, _ = client.portal.call(drive, api, "/scans/batch", batch, ADMIN_HEADERS)   # type: ignore[union-attr]
        assert status == 413 and batch.calls <= MAX_BATCH_BYTES // chunk + 1
        told = Receiver(1, 10)
        status, _ = client.portal.call(drive, api, "/scans/batch", told,   # type: ignore[union-attr]
                                       {**ADMIN_HEADERS, "content-length": str(MAX_BATCH_BYTES + 1)})
        assert status == 413 and told.calls == 0
        fallback = Receiver(1000, 1024)
        status, _ = client.portal.call(drive, api, "/scans", fallback, {})   # type: ignore[union-attr]
        assert status == 413 and fallback.calls <= MAX_SCAN_BODY // 1024 + 1


# -- 14: secrets in children's environments ----------------------------------------------------

def test_a_short_admin_token_is_refused_in_one_line(tmp_path: Path) -> None:
    from tests.fix_cli import run_cli

    result = run_cli("serve", "--database", str(tmp_path / "nope.db"), env={ADMIN_TOKEN_ENV: "too-short"})
    assert result.code == 6 and "32 characters" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_admin_token_leaves_the_environment_before_workers_start(
        shared_pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setenv(ADMIN_TOKEN_ENV, "t" * 40)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw, env=dict(os.environ)))
    digest = auth_module.take_admin_token()
    assert digest == auth_module.admin_token_digest("t" * 40) and ADMIN_TOKEN_ENV not in os.environ
    monkeypatch.setenv(ADMIN_TOKEN_ENV, "t" * 40)   # a library caller that left it there
    server.serve(ServiceConfig(database=str(shared_pair.legacy), admin_token_sha256=digest))
    assert ADMIN_TOKEN_ENV not in seen["env"]
    assert seen["proxy_headers"] is False        # no X-Forwarded-For trusted unless named
    server.serve(ServiceConfig(database=str(shared_pair.legacy)), forwarded_allow_ips="10.0.0.7")
    assert seen["proxy_headers"] is True and seen["forwarded_allow_ips"] == "10.0.0.7"


def test_pgbouncer_gets_no_secret_from_our_environment(shared_pair: Pair, pgbouncer_bin: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from truelabel_db.service.pgbouncer import PgBouncer, PoolerSettings

    monkeypatch.setenv(ADMIN_TOKEN_ENV, "t" * 40)
    monkeypatch.setenv("TRUELABEL_TARGET_URL", "postgresql://owner@db.internal/truelabel")
    with PgBouncer(shared_pair.url, settings=PoolerSettings(pool_size=1)) as pooler:
        environ = Path(f"/proc/{pooler.pid}/environ").read_bytes().split(b"\0")
    names = {entry.split(b"=", 1)[0].decode() for entry in environ if entry}
    assert ADMIN_TOKEN_ENV not in names and "TRUELABEL_TARGET_URL" not in names


# -- 15: rate-limit buckets ---------------------------------------------------------------------

def test_rate_limit_buckets_group_ipv6_by_64_and_non_addresses_as_one() -> None:
    limiter = RateLimiter(rate=0.001, burst=1)
    assert limiter.take("2001:db8::1", now=0.0) == 0.0
    assert limiter.take("2001:db8::ffff:1", now=0.0) > 0      # the same /64
    assert limiter.take("2001:db8:0:1::1", now=0.0) == 0.0    # another /64
    assert limiter.take("10.0.0.1", now=0.0) == 0.0
    assert limiter.take("::ffff:10.0.0.1", now=0.0) > 0       # the same IPv4 address, mapped
    assert limiter.take("not-an-address", now=0.0) == 0.0
    assert limiter.take("evil.example, 1.2.3.4", now=0.0) > 0  # anything else: one 'unknown' bucket
    assert limiter.take(None, now=0.0) > 0


# -- nits ---------------------------------------------------------------------------------------

def test_localhost_is_loopback_only_when_every_address_it_resolves_to_is(monkeypatch: pytest.MonkeyPatch) -> None:
    config = ServiceConfig(database="/nonexistent.db")
    server.refuse_unprotected(config, "127.0.0.2")
    server.refuse_unprotected(config, "::1")
    server.refuse_unprotected(config, "localhost")

    def rebound(host: str, *args: object, **kwargs: object) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 0))]

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    with pytest.raises(NoCredentialsError):
        server.refuse_unprotected(config, "localhost")
    with pytest.raises(NoCredentialsError):
        server.refuse_unprotected(config, "0.0.0.0")


def test_anonymous_health_answers_are_remembered_for_a_moment() -> None:
    from truelabel_db.service.app import RememberedCheck

    calls, now = [0], [0.0]

    def check() -> None:
        calls[0] += 1

    probe = RememberedCheck(check, seconds=1.0, clock=lambda: now[0])
    probe()
    probe()
    assert calls[0] == 1
    now[0] = 1.5
    probe()
    assert calls[0] == 2



def test_a_search_holding_a_nul_is_refused_alike_on_both_databases(shared_pair: Pair) -> None:
    for database in (shared_pair.url, str(shared_pair.legacy)):
        with serving(database) as client:
            assert client.get("/search", params={"q": "caf\x00é"}).status_code == 422  # before: 500 on PostgreSQL
            assert client.get("/search", params={"q": "café"}).status_code == 200
