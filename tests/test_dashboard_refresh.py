"""The dashboard view is refreshed concurrently: readers never wait, and one refresher at a time."""

from __future__ import annotations

import psycopg
import pytest

from tests.fix_twin import Pair
from truelabel_db.hotpaths import PostgresHotPaths
from truelabel_db.service.jobs import REFRESH_LOCK, refresh_dashboard


@pytest.fixture
def paths(shared_pair: Pair) -> PostgresHotPaths:
    opened = PostgresHotPaths(shared_pair.url, max_size=2)
    opened.refresh_dashboard()   # populated once: from now on every refresh is CONCURRENTLY
    yield opened
    opened.close()


def read_with_lock_timeout(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as reader:
        reader.execute("SET lock_timeout = '500ms'")
        return reader.execute("SELECT count(*) FROM brand_dashboard_stats").fetchone()[0]


def test_a_reader_is_not_blocked_by_a_refresh_in_progress(shared_pair: Pair, paths: PostgresHotPaths) -> None:
    with psycopg.connect(shared_pair.url) as refresher:
        refresher.execute("SELECT refresh_dashboard_stats()")   # its locks are held until commit
        assert read_with_lock_timeout(shared_pair.url) > 0
        refresher.commit()


def test_a_plain_refresh_would_have_blocked_that_reader(shared_pair: Pair, paths: PostgresHotPaths) -> None:
    with psycopg.connect(shared_pair.url) as refresher:
        refresher.execute("REFRESH MATERIALIZED VIEW brand_dashboard_stats")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            read_with_lock_timeout(shared_pair.url)
        refresher.rollback()


def test_a_second_refresher_skips_while_one_is_at_work(shared_pair: Pair, paths: PostgresHotPaths) -> None:
    with psycopg.connect(shared_pair.url) as busy:
        busy.execute("SELECT pg_advisory_xact_lock(%s)", (REFRESH_LOCK,))
        assert refresh_dashboard(paths) is False
        busy.commit()
    assert refresh_dashboard(paths) is True


def test_the_refresh_brings_in_new_data(shared_pair: Pair, paths: PostgresHotPaths) -> None:
    brand = paths.brands(1)[0]
    before = paths.brand_dashboard(brand)["total_products"]
    with psycopg.connect(shared_pair.url, autocommit=True) as conn:
        conn.execute("INSERT INTO products (name, brand, category, sku, user_id) "
                     "VALUES ('Novo', 'Marca', 'Snacks', 'SKU-REFRESH-1', %s)", (brand,))
    assert paths.brand_dashboard(brand)["total_products"] == before
    assert refresh_dashboard(paths)
    assert paths.brand_dashboard(brand)["total_products"] == before + 1
