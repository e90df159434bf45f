"""An operator's view of a migration, gathered in one pass: ``truelabel-db status [--watch]``.

Copy progress per table, the follower's position and lag, the changelog still to apply, the
last verified position, the quarantine, which database is the primary (the catalog's record)
and the gate (Redis, when given), and the alerts an operator should act on. Every figure comes
from where the tools themselves record it; nothing here writes.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis

from truelabel_db.capture import capture_status
from truelabel_db.catalog import copy_runs, follow_state, primary, quarantine
from truelabel_db.cutover.gate import READONLY_KEY, read_primary
from truelabel_db.errors import SourceError
from truelabel_db.postgres import connect

STALL_SECONDS = 60.0  # changes waiting and no batch applied for this long: the follower is not running


@dataclass
class MigrationStatus:
    source: str
    taken_at: float
    copy_run: int | None = None
    copy_status: str | None = None
    copy_tables: list[dict[str, Any]] = field(default_factory=list)
    follower: dict[str, Any] | None = None
    changelog_pending: int | None = None
    changelog_last_seq: int | None = None
    capture_installed: bool = False
    quarantined: int = 0
    primary: str = primary.SQLITE
    primary_since: str | None = None
    gate: str | None = None             # the gate's owner token, when raised
    published_primary: str | None = None
    alerts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def collect(source: Path, target_url: str, redis_url: str | None = None, *,
            lag_threshold_ms: int = 1_000) -> MigrationStatus:
    status = MigrationStatus(str(source.resolve()), time.time())
    _from_postgres(status, target_url)
    _from_sqlite(status, source)
    if redis_url:
        _from_redis(status, redis_url)
    status.alerts = alerts(status, lag_threshold_ms)
    return status


def _from_postgres(status: MigrationStatus, target_url: str) -> None:
    with connect(target_url, autocommit=True) as conn:
        found = copy_runs.latest(conn)
        if found is not None:
            run, state = found
            status.copy_run, status.copy_status = run.run_id, state
            status.copy_tables = [asdict(t) for t in copy_runs.progress(conn, run.run_id)]
        figures = follow_state.figures(conn, status.source)
        status.follower = figures[0].to_dict() if figures else None
        if found is not None:
            status.quarantined = sum(quarantine.open_counts(conn).values())
        state_now = primary.current(conn, status.source)
        status.primary = state_now.primary
        status.primary_since = str(state_now.changed_at) if state_now.changed_at else None


def _from_sqlite(status: MigrationStatus, source: Path) -> None:
    try:
        capture = capture_status(source)
    except SourceError as exc:
        status.alerts.append(f"legacy file: {exc}")
        return
    status.capture_installed = capture.installed
    status.changelog_pending, status.changelog_last_seq = capture.pending_rows, capture.last_seq
    if capture.schema_changed:
        status.alerts.append("the legacy schema changed since capture was installed: the follower stops")


def _from_redis(status: MigrationStatus, redis_url: str) -> None:
    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1, decode_responses=True)
        gate = client.get(READONLY_KEY)
        status.gate = gate if gate is None or isinstance(gate, str) else gate.decode()
        published = read_primary(client, None)
        status.published_primary = published.kind if published else None
    except redis.RedisError as exc:
        status.alerts.append(f"Redis unreachable: {exc}")


def alerts(status: MigrationStatus, lag_threshold_ms: int) -> list[str]:
    """What needs an operator: lag past the threshold, a stalled follower, disagreeing primaries."""
    out = list(status.alerts)
    follower = status.follower
    if follower and (follower.get("lag_ms") or 0) > lag_threshold_ms:
        out.append(f"follower lag {follower['lag_ms']} ms is above {lag_threshold_ms} ms")
    if (follower and status.primary == primary.SQLITE and (follower.get("lag_rows") or 0) > 0
            and follower["seconds_since_apply"] > STALL_SECONDS):
        out.append(f"the follower applied nothing for {follower['seconds_since_apply']:.0f} s with changes waiting")
    if status.capture_installed and follower is None and status.copy_status == "done":
        out.append("the copy is done but no follower has run: changes pile up in the changelog")
    if status.published_primary and status.published_primary != status.primary:
        out.append(f"Redis publishes {status.published_primary} as the primary; the catalog records {status.primary}")
    if status.copy_status == "running" and not status.copy_tables:
        out.append("a copy run is recorded as running with nothing planned: interrupted? run copy again")
    return out


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """A line of block characters, one per value, scaled to the largest."""
    if not values:
        return ""
    top = max(values) or 1.0
    return "".join(SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1)))] for v in values)
