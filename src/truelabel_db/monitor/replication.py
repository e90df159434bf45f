"""Replication lag of the replicas, seen from the primary and from a replica itself.

From the primary, ``pg_stat_replication`` lists each connected standby with how far behind it
is in bytes of WAL and in time (``replay_lag``, which PostgreSQL only updates while WAL flows;
an idle primary leaves the last value). From a replica, the lag that matters for reads is how
old its data may be: zero when it has replayed everything the primary has written, else the
age of the last transaction it replayed. :func:`replica_lag_seconds` is that figure, and the
read router uses it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from truelabel_db.postgres import one


@dataclass
class ReplicaSeen:
    name: str
    client: str | None
    state: str
    sync_state: str
    lag_bytes: int | None
    replay_lag_seconds: float | None
    slot: str | None


@dataclass
class ReplicationReport:
    role: str  # primary | replica
    replicas: list[ReplicaSeen] = field(default_factory=list)
    own_lag_seconds: float | None = None  # when connected to a replica
    slots_inactive: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_replica(conn: psycopg.Connection) -> bool:
    return bool(one(conn.execute("SELECT pg_is_in_recovery()"))[0])


def replicas_seen(conn: psycopg.Connection) -> list[ReplicaSeen]:
    rows = conn.execute(
        "SELECT r.application_name, r.client_addr::text, r.state, r.sync_state, "
        "pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint, "
        "extract(epoch FROM r.replay_lag)::float, s.slot_name "
        "FROM pg_stat_replication r LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid "
        "ORDER BY r.application_name").fetchall()
    return [ReplicaSeen(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]


def replica_lag_seconds(conn: psycopg.Connection, primary_lsn: str | None = None) -> float | None:
    """How stale reads on this replica may be, in seconds; None when it is not a replica.

    With ``primary_lsn`` (the primary's ``pg_current_wal_lsn()`` read just before), a replica
    that has replayed up to it is exactly current even if its last replayed transaction is old
    (an idle primary); one that has not is as stale as its last replayed transaction. Without
    it, a replica that has replayed all it received counts as current, which is wrong only when
    it has lost its connection to the primary.
    """
    row = one(conn.execute(
        "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(), "
        "extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float, "
        "CASE WHEN %s::pg_lsn IS NULL THEN NULL "
        "     ELSE pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn()) END",
        (primary_lsn, primary_lsn)))
    in_recovery, received, replayed, age, behind = row
    if not in_recovery:
        return None
    caught_up = behind <= 0 if behind is not None else received == replayed
    if caught_up:
        return 0.0
    return float(age) if age is not None else float("inf")


def replication_report(conn: psycopg.Connection) -> ReplicationReport:
    if is_replica(conn):
        return ReplicationReport("replica", own_lag_seconds=replica_lag_seconds(conn))
    report = ReplicationReport("primary", replicas_seen(conn))
    report.slots_inactive = [r[0] for r in conn.execute(
        "SELECT slot_name FROM pg_replication_slots WHERE NOT active ORDER BY 1")]
    return report
