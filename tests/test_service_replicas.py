"""The service reads from a streaming replica within the lag bound and writes to the primary."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.fix_auth import ADMIN, ADMIN_HEADERS
from tests.fix_replicas import StreamingPair, wait_replayed
from tests.fix_wait import wait_until
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.embedded import EmbeddedCluster
from truelabel_db.legacy.generator import generate
from truelabel_db.postgres import describe
from truelabel_db.service import ServiceConfig, create_app


@dataclass
class Topology:
    primary_url: str
    replica_url: str
    replica: EmbeddedCluster


@pytest.fixture(scope="module")
def topology(streaming_pair: StreamingPair, tmp_path_factory: pytest.TempPathFactory) -> Topology:
    """The session's primary and replica, with a True Label database of this module's own."""
    folder = tmp_path_factory.mktemp("serve-replica")
    url = streaming_pair.primary.create_database("truelabel")
    generate(folder / "legacy.db", 0.02, seed=31)
    run_copy(folder / "legacy.db", url, CopyOptions(work_dir=folder / "w", workers=2))
    wait_replayed(streaming_pair)
    return Topology(url, streaming_pair.replica_url("truelabel"), streaming_pair.replica_cluster)


def test_reads_go_to_the_replica_and_scans_to_the_primary(topology: Topology) -> None:
    config = ServiceConfig(database=topology.primary_url, cache=False, replicas=(topology.replica_url,),
                           replica_max_lag=30, warm_on_start=False, refresh_interval=0, warm_interval=0, **ADMIN)
    with TestClient(create_app(config), headers=ADMIN_HEADERS) as client:
        deadline = time.monotonic() + 10
        while describe(topology.replica_url) not in (client.get("/health").json()["reads"] or {}):
            client.get("/validations/queue?limit=5")
            assert time.monotonic() < deadline, client.get("/health").json()["replicas"]
            time.sleep(0.2)
        products = client.get("/products?limit=5").json()
        code = next(p["qr_code"] for p in client.get("/products?limit=50").json() if p["qr_code"])
        assert client.post("/scans", json={"qr_code": code}).status_code == 200   # a replica would refuse it
        with psycopg.connect(topology.primary_url) as conn:
            direct = conn.execute("SELECT id::text FROM products ORDER BY created_at DESC, id DESC LIMIT 5").fetchall()
        assert [p["id"] for p in products] == [r[0] for r in direct]


def test_with_the_replica_down_reads_fall_back_to_the_primary(topology: Topology) -> None:
    config = ServiceConfig(database=topology.primary_url, cache=False, replicas=(topology.replica_url,),
                           replica_max_lag=30, warm_on_start=False, refresh_interval=0, warm_interval=0, **ADMIN)
    topology.replica.stop()
    try:
        with TestClient(create_app(config), headers=ADMIN_HEADERS) as client:
            def replica_judged_down() -> bool:
                assert client.get("/validations/queue?limit=5").status_code == 200   # reads keep working
                return client.get("/health").json()["replicas"][0]["eligible"] is False

            wait_until(replica_judged_down, "the service sees the replica down", poll=0.1)
            health = client.get("/health").json()
            assert set(health["reads"]) == {describe(topology.primary_url)}
            assert health["replicas"][0]["eligible"] is False
    finally:
        topology.replica.start()
