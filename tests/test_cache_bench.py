"""bench cache measures what it says: its reads through the service are answered (a bench that
counted 401s as reads would print a hit ratio of nothing), and each writer's staleness is timed."""

from __future__ import annotations

import pytest

from tests.fix_twin import Pair
from truelabel_db.bench import cache_bench

pytestmark = pytest.mark.slow


def test_the_read_mix_and_the_staleness_probes_run_through_the_service(fresh_pair: Pair, redis_url: str) -> None:
    with cache_bench._service(fresh_pair.url, redis_url) as client:
        products = cache_bench._products(client, 20)
        scans = cache_bench.staleness_scans(client, products, 1)
        direct = cache_bench.staleness_sql(client, fresh_pair.url, products, 2)
    assert len(scans.samples_ms) == 1 and len(direct.samples_ms) == 2
    ratio = cache_bench.hit_ratio(fresh_pair.url, redis_url, True, seconds=1.0, write_rate=2.0, products=20)
    assert ratio is not None and 0.0 < ratio <= 1.0
