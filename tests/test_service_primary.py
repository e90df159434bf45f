"""The configured databases win over Redis, and a write never passes a gate it cannot read."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient

from tests.fix_auth import ADMIN, ADMIN_HEADERS
from tests.fix_redis import PrivateRedis
from tests.fix_twin import Pair
from truelabel_db.cutover.gate import Gate
from truelabel_db.postgres import describe
from truelabel_db.service import ServiceConfig, create_app
from truelabel_db.service.backend import Backend

QUIET = dict(warm_on_start=False, refresh_interval=0, warm_interval=0, cache=False)


def gate_of(redis_url: str) -> Gate:
    return Gate(redis.Redis.from_url(redis_url, decode_responses=True))


def kind_served(config: ServiceConfig, publish: list[tuple[str, str]]) -> list[str]:
    """The database a backend serves at start, then after each later publication is checked."""
    async def run() -> list[str]:
        backend = await Backend.start(config)
        try:
            served = [backend.current.paths.kind]
            for kind, locator in publish:
                gate_of(config.redis_url or "").publish_primary(kind, locator)
                await backend.check_primary()
                served.append(backend.current.paths.kind)
            return served
        finally:
            await backend.close()

    return asyncio.run(run())


def a_stray_copy(pair: Pair, tmp_path: Path) -> str:
    stray = tmp_path / "stray.db"
    shutil.copyfile(pair.legacy, stray)
    return str(stray)


def test_a_published_sqlite_file_the_service_was_not_given_is_refused(shared_pair: Pair, redis_url: str,
                                                                     tmp_path: Path) -> None:
    stray = a_stray_copy(shared_pair, tmp_path)
    gate_of(redis_url).publish_primary("sqlite", stray)
    config = ServiceConfig(database=shared_pair.url, redis_url=redis_url, **QUIET)
    assert kind_served(config, [("sqlite", stray)]) == ["postgresql", "postgresql"]


def test_a_published_postgresql_other_than_the_configured_one_is_refused(shared_pair: Pair, redis_url: str) -> None:
    config = ServiceConfig(database=str(shared_pair.legacy), redis_url=redis_url, postgres_url=shared_pair.url,
                           **QUIET)
    elsewhere = describe(psycopg.conninfo.make_conninfo(shared_pair.url, dbname="postgres"))
    assert kind_served(config, [("postgresql", elsewhere)]) == ["sqlite", "sqlite"]


def test_the_service_moves_between_the_databases_it_was_configured_with(shared_pair: Pair, redis_url: str) -> None:
    config = ServiceConfig(database=shared_pair.url, redis_url=redis_url, legacy_path=str(shared_pair.legacy),
                           **QUIET)
    published = [("sqlite", str(shared_pair.legacy)), ("postgresql", describe(shared_pair.url))]
    assert kind_served(config, published) == ["postgresql", "sqlite", "postgresql"]


@pytest.mark.parametrize("side", ["postgresql", "sqlite"])
def test_with_the_gate_unreadable_writes_answer_503_and_reads_go_on(shared_pair: Pair, side: str) -> None:
    unreachable = PrivateRedis()   # a port nothing listens on
    database = shared_pair.url if side == "postgresql" else str(shared_pair.legacy)
    config = ServiceConfig(database=database, redis_url=unreachable.url, **QUIET, **ADMIN)
    with TestClient(create_app(config), headers=ADMIN_HEADERS) as client:
        listed = client.get("/products?limit=5")
        code = next(p["qr_code"] for p in listed.json() if p["qr_code"])
        scan = client.post("/scans", json={"qr_code": code, "user_agent": "gate-unknown"})
        batch = client.post("/scans/batch", json={"scans": [{"qr_code": code, "user_agent": "gate-unknown"}]})
    assert listed.status_code == 200
    for refused in (scan, batch):
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "gate" in refused.json()["detail"]
    if side == "postgresql":
        with psycopg.connect(shared_pair.url) as conn:
            assert conn.execute("SELECT count(*) FROM qr_code_access WHERE user_agent = 'gate-unknown'"
                                ).fetchone()[0] == 0
