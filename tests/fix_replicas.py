"""A primary and its streaming replica, made once per session (an initdb and a base backup).

Each test module creates its own database on the primary and waits until the replica has
replayed it (:func:`database_on_both`). A test may pause replay or stop the replica; it resumes or
starts it again before it ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from truelabel_db.embedded import EmbeddedCluster, free_port, scratch_cluster_dir
from truelabel_db.replicas.add import Replica, add_replica

REPLICA_NAME = "replica_a"


@dataclass(frozen=True)
class StreamingPair:
    primary: EmbeddedCluster
    replica_cluster: EmbeddedCluster
    replica: Replica
    folder: Path

    def replica_url(self, dbname: str) -> str:
        return make_conninfo(self.replica.url, dbname=dbname)


@pytest.fixture(scope="session")
def streaming_pair(server_binaries: Path) -> Iterator[StreamingPair]:
    with scratch_cluster_dir("replication-") as folder:
        primary = EmbeddedCluster(folder / "primary").start()
        replica_cluster: EmbeddedCluster | None = None
        try:
            replica = add_replica(primary.url, folder / "replica", free_port(), name=REPLICA_NAME)
            replica_cluster = EmbeddedCluster(folder / "replica", port=replica.port)
            yield StreamingPair(primary, replica_cluster, replica, folder)
        finally:
            if replica_cluster is not None:
                replica_cluster.stop()
            primary.stop()


def database_on_both(pair: StreamingPair, name: str) -> tuple[str, str]:
    """A new, empty database on the primary, once the replica has it too: (primary URL, replica URL)."""
    url = pair.primary.create_database(name)
    wait_replayed(pair)
    return url, pair.replica_url(name)


def wait_replayed(pair: StreamingPair, seconds: float = 60.0) -> None:
    """Wait until the replica has replayed everything the primary has written so far."""
    with psycopg.connect(pair.primary.url, autocommit=True) as conn:
        target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.monotonic() + seconds
    with psycopg.connect(pair.replica.url, autocommit=True) as replica:
        while not replica.execute(sql.SQL("SELECT pg_last_wal_replay_lsn() >= {}::pg_lsn").format(
                sql.Literal(str(target)))).fetchone()[0]:
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.05)
