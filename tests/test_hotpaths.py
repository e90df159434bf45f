"""Every hot path gives the same answer on the legacy SQLite and on the optimized PostgreSQL.

One generated legacy file is copied once; each test asks both databases (and the app's own
N+1 way on SQLite) the same question and demands equal answers.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from tests.fix_twin import Pair
from truelabel_db.hotpaths import LegacyHotPaths, PostgresHotPaths, Scan, open_hot_paths


class Twin:
    def __init__(self, path: Path, url: str) -> None:
        self.path, self.url = path, url
        self.best = LegacyHotPaths(path, mode="best")
        self.app = LegacyHotPaths(path, mode="app")
        self.pg = PostgresHotPaths(url, max_size=2)
        self.pg.refresh_dashboard()

    def newest_scan(self) -> datetime:
        with sqlite3.connect(self.path) as conn:
            (ms,) = conn.execute('SELECT max("accessedAt") FROM qr_code_accesses').fetchone()
        return datetime.fromtimestamp(ms / 1000, timezone.utc)

    def close(self) -> None:
        for paths in (self.best, self.app, self.pg):
            paths.close()


@pytest.fixture(scope="module")
def twin(shared_pair: Pair) -> Iterator[Twin]:
    twin = Twin(shared_pair.legacy, shared_pair.url)
    yield twin
    twin.close()


def test_the_product_list_has_each_product_with_its_validations_and_brand(twin: Twin) -> None:
    pg = twin.pg.product_list(200)
    assert len(pg) == 200
    assert pg == twin.best.product_list(200) == twin.app.product_list(200)
    assert any(p["validations"] for p in pg) and all(p["brand_user"]["id"] == p["user_id"] for p in pg)
    stamps = [p["created_at"] for p in pg]
    assert stamps == sorted(stamps, reverse=True)


def test_a_product_detail_is_the_same_and_an_unknown_id_is_none_on_both(twin: Twin) -> None:
    some = twin.pg.product_list(3)[2]["id"]
    assert twin.pg.product(some) == twin.best.product(some) == twin.app.product(some)
    for unknown in (str(uuid.uuid4()), "not-a-uuid"):
        assert twin.pg.product(unknown) is None and twin.best.product(unknown) is None


def test_qr_analytics_count_the_same_scans_per_day_and_the_same_top_products(twin: Twin) -> None:
    now = twin.newest_scan()
    busiest = twin.best.brands(1000)
    answers = [(twin.pg.qr_analytics(b, 30, now), twin.best.qr_analytics(b, 30, now)) for b in busiest]
    assert all(pg == best for pg, best in answers)
    assert sum(pg["total_scans"] for pg, _ in answers) > 0
    some = next(pg for pg, _ in answers if pg["total_scans"])
    assert some == twin.app.qr_analytics(some["brand_id"], 30, now)
    assert len(some["days"]) == 30 and sum(d["scans"] for d in some["days"]) == some["total_scans"]


def test_a_brand_dashboard_matches_the_live_aggregates_of_the_legacy_file(twin: Twin) -> None:
    twin.pg.refresh_dashboard()
    for brand in twin.best.brands(1000):
        pg, best, app = (p.brand_dashboard(brand) for p in (twin.pg, twin.best, twin.app))
        assert pg is not None and pg == best == app
    assert twin.pg.brand_dashboard(str(uuid.uuid4())) is None and twin.best.brand_dashboard("nobody") is None


def test_the_validation_queue_is_most_urgent_first_then_oldest(twin: Twin) -> None:
    pg = twin.pg.validation_queue(100)
    assert pg == twin.best.validation_queue(100) and len(pg) == 100
    ranks = [("LOW", "NORMAL", "HIGH", "URGENT").index(q["priority"]) for q in pg]
    assert ranks == sorted(ranks, reverse=True)
    assert {q["status"] for q in pg} <= {"PENDING", "ASSIGNED", "IN_PROGRESS"}


def test_search_finds_the_same_products_for_a_word_and_postgres_also_forgives_a_typo(twin: Twin) -> None:
    name = twin.pg.product_list(1)[0]["name"]          # e.g. "Granola Crocante"
    word = name.split()[0]
    found = {p["id"] for p in twin.pg.search(word, 10_000)}
    assert found == {p["id"] for p in twin.best.search(word, 10_000)} and found
    typo = word[:-1] + ("x" if word[-1] != "x" else "y")
    assert twin.best.search(typo, 50) == []
    assert any(p["name"].split()[0] == word for p in twin.pg.search(typo, 50))


def test_a_scan_returns_the_product_and_is_counted_by_analytics_on_both(twin: Twin) -> None:
    product = next(p for p in twin.pg.product_list(50) if p["qr_code"])
    at = twin.newest_scan() + timedelta(seconds=1)
    before = [p.qr_analytics(product["user_id"], 1, at)["total_scans"] for p in (twin.pg, twin.best)]
    scan = Scan(product["qr_code"], "200.1.2.3", "Mozilla/5.0", at)
    seen = [p.scan(scan) for p in (twin.pg, twin.best)]
    assert seen[0] == seen[1] and seen[0]["id"] == product["id"]
    after = [p.qr_analytics(product["user_id"], 1, at)["total_scans"] for p in (twin.pg, twin.best)]
    assert after == [before[0] + 1, before[1] + 1]


def test_an_unknown_code_finds_nothing_and_is_not_recorded_on_either_side(twin: Twin) -> None:
    scan = Scan("TL-FAKE0001", None, "curl", twin.newest_scan())
    assert twin.pg.scan(scan) is None and twin.best.scan(scan) is None
    twin.pg.record_scan(scan)
    twin.best.record_scan(scan)
    assert twin.pg.record_scans([scan]).unknown == twin.best.record_scans([scan]).unknown == (0,)
    with sqlite3.connect(twin.path) as conn:
        assert conn.execute('SELECT count(*) FROM qr_code_accesses WHERE "qrCode" = ?', ("TL-FAKE0001",)).fetchone() == (0,)
    with psycopg.connect(twin.url) as conn:
        assert conn.execute("SELECT count(*) FROM qr_code_access WHERE qr_code = %s", ("TL-FAKE0001",)).fetchone() == (0,)


def test_open_hot_paths_picks_the_database_by_its_locator(twin: Twin) -> None:
    legacy = open_hot_paths(str(twin.path))
    postgres = open_hot_paths(twin.url, pool_size=1)
    try:
        assert (legacy.kind, postgres.kind) == ("sqlite", "postgresql")
    finally:
        legacy.close()
        postgres.close()


def test_the_async_implementation_gives_the_blocking_ones_answers(twin: Twin) -> None:
    import asyncio

    from truelabel_db.hotpaths.postgres_async import AsyncPostgresHotPaths

    brand = twin.best.brands(1)[0]
    product = twin.pg.product_list(1)[0]
    word = product["name"].split()[0]

    async def ask() -> list[object]:
        paths = await AsyncPostgresHotPaths.open(twin.url, max_size=2)
        try:
            return [await paths.product_list(50), await paths.product(product["id"]), await paths.product("nope"),
                    await paths.brand_dashboard(brand), await paths.validation_queue(20), await paths.search(word, 50),
                    await paths.qr_analytics(brand, 7)]
        finally:
            await paths.close()

    answers = asyncio.run(ask())
    assert answers == [twin.pg.product_list(50), twin.pg.product(product["id"]), None, twin.pg.brand_dashboard(brand),
                       twin.pg.validation_queue(20), twin.pg.search(word, 50), twin.pg.qr_analytics(brand, 7)]


def test_a_group_of_scans_is_recorded_at_once_and_each_finds_its_product_on_both(twin: Twin) -> None:
    products = [p for p in twin.pg.product_list(20) if p["qr_code"]][:3]
    at = twin.newest_scan() + timedelta(seconds=2)
    scans = [Scan(p["qr_code"], "200.1.2.3", "group", at) for p in products] + [Scan("TL-NOBODY", None, "group", at)]
    found = [paths.scan_many(scans) for paths in (twin.pg, twin.best)]
    assert found[0] == found[1]
    assert [f["id"] if f else None for f in found[0]] == [p["id"] for p in products] + [None]
