"""Streaming replicas made with pg_basebackup -R, and reads routed to them within a lag bound."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
import pytest

from tests.fix_replicas import StreamingPair, wait_replayed
from truelabel_db.embedded import EmbeddedCluster, free_port
from truelabel_db.errors import ConfigError
from truelabel_db.monitor.replication import replication_report
from truelabel_db.replicas.add import Replica, ReplicaError, add_replica
from truelabel_db.replicas.router import ReadRouter


@dataclass
class Pair:
    primary: EmbeddedCluster
    primary_url: str
    replica: Replica
    folder: Path


def _wait_until(predicate, seconds: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def pair(streaming_pair: StreamingPair) -> Pair:
    """The session's primary and replica, with a database ``app`` of this module's own."""
    url = streaming_pair.primary.create_database("app")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE scans (id serial PRIMARY KEY, code text)")
    wait_replayed(streaming_pair)
    replica = replace(streaming_pair.replica, url=streaming_pair.replica_url("app"))
    return Pair(streaming_pair.primary, url, replica, streaming_pair.folder)


def _count(url: str, code: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return int(conn.execute("SELECT count(*) FROM scans WHERE code = %s", (code,)).fetchone()[0])


def test_a_replica_is_created_and_serves_reads(pair: Pair) -> None:
    assert pair.replica.streaming
    with psycopg.connect(pair.primary_url, autocommit=True) as conn:
        conn.execute("INSERT INTO scans (code) VALUES ('first')")
        seen = replication_report(conn)
    _wait_until(lambda: _count(pair.replica.url, "first") == 1)

    with psycopg.connect(pair.replica.url, autocommit=True) as replica:
        assert replica.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        assert replication_report(replica).role == "replica"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            replica.execute("INSERT INTO scans (code) VALUES ('refused')")
    assert seen.role == "primary" and [r.name for r in seen.replicas] == ["replica_a"]
    assert seen.replicas[0].state == "streaming"


def test_reads_go_to_a_replica_within_the_bound_and_to_the_primary_beyond_it(pair: Pair) -> None:
    router = ReadRouter(pair.primary_url, [pair.replica.url], max_lag_seconds=0.5, check_interval=0)
    assert router.read_url() == pair.replica.url
    assert router.write_url() == pair.primary_url
    with psycopg.connect(pair.replica.url, autocommit=True) as replica:
        replica.execute("SELECT pg_wal_replay_pause()")
        try:
            with psycopg.connect(pair.primary_url, autocommit=True) as primary:
                primary.execute("INSERT INTO scans (code) VALUES ('before pause')")
                time.sleep(1.0)  # the last replayed commit is now older than the bound
                primary.execute("INSERT INTO scans (code) VALUES ('during pause')")

            assert router.read_url() == pair.primary_url
            (state,) = router.states()
            assert not state.eligible and "lag" in state.reason
            assert _count(pair.replica.url, "during pause") == 0
        finally:
            replica.execute("SELECT pg_wal_replay_resume()")
    _wait_until(lambda: router.read_url() == pair.replica.url)
    assert _count(pair.replica.url, "during pause") == 1


def test_an_unreachable_replica_is_skipped_and_reads_rotate_among_the_others(pair: Pair) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/app"
    router = ReadRouter(pair.primary_url, [dead, pair.replica.url, pair.primary_url],
                        max_lag_seconds=60, check_interval=3600)
    states = {s.url: s for s in router.states(refresh=True)}
    assert not states[dead].eligible and states[dead].reason.startswith("unreachable")
    assert not states[pair.primary_url].eligible  # a server not in recovery is no replica
    assert {router.read_url() for _ in range(4)} == {pair.replica.url}
    assert ReadRouter(pair.primary_url, [dead], check_interval=0).read_url() == pair.primary_url


def test_add_replica_refuses_a_folder_that_holds_files_and_a_primary_without_wal(
        pair: Pair, cluster: EmbeddedCluster, cluster_dir: Path) -> None:
    with pytest.raises(ConfigError, match="already holds files"):
        add_replica(pair.primary_url, pair.folder / "replica", free_port())
    cluster.restart({"wal_level": "minimal", "max_wal_senders": "0"})
    with pytest.raises(ReplicaError, match="wal_level"):
        add_replica(cluster.url, cluster_dir / "r", free_port())


def test_replica_status_on_the_command_line(pair: Pair) -> None:
    import json

    from tests.fix_cli import run_cli

    result = run_cli("replica", "status", "--target", pair.primary_url, "--replica", pair.replica.url,
                     "--max-lag", "30", "--json")
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["replicas"][0]["eligible"] and document["reads_go_to"].endswith(f":{pair.replica.port}/app")


@pytest.mark.slow
def test_replica_add_on_the_command_line(pair: Pair) -> None:
    import json

    from tests.fix_cli import run_cli

    port = free_port()
    result = run_cli("replica", "add", "--data-dir", str(pair.folder / "cli-replica"), "--port", str(port),
                     "--name", "replica_cli", "--target", pair.primary_url, "--json")
    try:
        assert result.code == 0, result.stderr
        document = json.loads(result.stdout)
        assert document["streaming"] and document["port"] == port
        with psycopg.connect(pair.primary_url, autocommit=True) as conn:
            assert "replica_cli" in [r.name for r in replication_report(conn).replicas]
    finally:
        EmbeddedCluster(pair.folder / "cli-replica", port=port).stop()
