"""Routing reads to a replica whose lag is within a bound, else to the primary.

    router = ReadRouter(primary_url, [replica_url, ...], max_lag_seconds=5)
    url = router.read_url()        # a fresh-enough replica, or the primary
    url = router.write_url()       # always the primary

The router knows nothing of the application: it hands out URLs (for a pool per URL, or a
connection per request) and measures the replicas at most every ``check_interval`` seconds.
Each check reads the primary's current WAL position, then each replica's lag against it
(``monitor.replication.replica_lag_seconds``): a replica that has replayed everything is
current however old its last transaction; one behind is as stale as the last transaction it
replayed. A replica that does not answer, is no longer in recovery (promoted) or lags beyond
the bound is skipped; with none left, reads go to the primary. Among the eligible replicas reads
rotate. If the primary itself does not answer a check, replicas are judged on their own view
(all they received is replayed) — reads keep working during a primary outage.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg

from truelabel_db.errors import ConfigError
from truelabel_db.monitor.replication import replica_lag_seconds
from truelabel_db.postgres import describe, one

DEFAULT_MAX_LAG_SECONDS = 60.0  # plan §5.1: lag_threshold 60s
DEFAULT_CHECK_INTERVAL = 1.0
CONNECT_TIMEOUT = 2


@dataclass(frozen=True)
class ReplicaState:
    url: str
    lag_seconds: float | None  # None: did not answer or is not a replica
    eligible: bool
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"replica": describe(self.url), "lag_seconds": self.lag_seconds,
                "eligible": self.eligible, "reason": self.reason}


def measure(url: str, primary_lsn: str | None, max_lag: float) -> ReplicaState:
    """One replica's lag against the primary's WAL position, and whether it may serve reads."""
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, autocommit=True) as conn:
            lag = replica_lag_seconds(conn, primary_lsn)
    except psycopg.Error as exc:
        return ReplicaState(url, None, False, "unreachable: " + (str(exc).strip().splitlines() or ["?"])[0])
    if lag is None:
        return ReplicaState(url, None, False, "not in recovery (promoted or not a replica)")
    if lag > max_lag:
        return ReplicaState(url, lag, False, f"lag {lag:.1f} s above {max_lag:g} s")
    return ReplicaState(url, lag, True, "within bound")


def primary_wal_lsn(url: str) -> str | None:
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, autocommit=True) as conn:
            return str(one(conn.execute("SELECT pg_current_wal_lsn()"))[0])
    except psycopg.Error:
        return None


class ReadRouter:
    """Picks where a read goes; thread-safe; checks replicas at most every ``check_interval``.

    The check runs outside the router's lock, in the one caller that finds the last check
    stale; callers arriving meanwhile use the last known states (before the first check
    completes, that means the primary), so no read waits on a slow or unreachable replica.
    """

    def __init__(self, primary_url: str, replica_urls: Sequence[str], *,
                 max_lag_seconds: float = DEFAULT_MAX_LAG_SECONDS,
                 check_interval: float = DEFAULT_CHECK_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_lag_seconds < 0 or check_interval < 0:
            raise ConfigError("the lag bound and the check interval cannot be negative")
        self.primary_url = primary_url
        self.replica_urls = list(replica_urls)
        self.max_lag_seconds = max_lag_seconds
        self.check_interval = check_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._checking = threading.Lock()
        self._checked_at: float | None = None
        self._states: list[ReplicaState] = []
        self._rotation: itertools.cycle[str] | None = None
        self._eligible: list[str] = []

    def write_url(self) -> str:
        return self.primary_url

    def read_url(self) -> str:
        """A replica within the lag bound (rotating among them), else the primary."""
        if self._stale():
            self._check(wait=False)
        with self._lock:
            if not self._eligible or self._rotation is None:
                return self.primary_url
            return next(self._rotation)

    def states(self, *, refresh: bool = False) -> list[ReplicaState]:
        """Each replica's last measured state (measured now with ``refresh``)."""
        if refresh or self._checked_at is None:
            self._check(wait=True)
        with self._lock:
            return list(self._states)

    def _stale(self) -> bool:
        with self._lock:
            return self._checked_at is None or self._clock() - self._checked_at >= self.check_interval

    def _check(self, *, wait: bool) -> None:
        if not self._checking.acquire(blocking=wait):
            return  # another caller is measuring; use what is known
        try:
            lsn = primary_wal_lsn(self.primary_url)
            states = [measure(url, lsn, self.max_lag_seconds) for url in self.replica_urls]
            eligible = [s.url for s in states if s.eligible]
            with self._lock:
                self._states = states
                if eligible != self._eligible:
                    self._eligible = eligible
                    self._rotation = itertools.cycle(eligible) if eligible else None
                self._checked_at = self._clock()
        finally:
            self._checking.release()
