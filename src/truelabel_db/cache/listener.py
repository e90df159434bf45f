"""One listener per service process: PostgreSQL's change log applied to this process's cache.

A thread holds a dedicated autocommit connection that LISTENs on ``cache_changes.CHANNEL``.
Each notification (and, as a health check, every ``poll`` seconds without one) triggers a
sweep: the changes committed since the listener's last snapshot, read in one statement, handed
to ``apply`` (``db_events.ChangeApplier``), and the new snapshot kept as the position. Sweeps
are at least ``coalesce`` apart (the notifications that came meanwhile are drained, one sweep
reads all their changes): one NOTIFY per transaction times one sweep per listener per process
was a sweep per write per worker.

Losing the connection makes the cache ``suspect`` at once (L1 emptied, L2 and L3 not read, no
L1 fills). On reconnect the listener LISTENs first, then sweeps from the position it kept, so a
change is either in that sweep or notified after it; only then is the cache trusted again. If
it was away longer than the log keeps changes (``keep``), the changes cannot be named and the
whole cache is emptied instead; so it is when a trim removed changes its position had not seen
(``cache_changes.trimmed_past``: the log is trimmed by commit, not insert, time).

The position is also kept in Redis, so a process that starts (or a deployment that restarts)
sweeps from where the last listener stopped instead of trusting whatever L2 holds. It is kept
with the database's identity and trusted only for that database and a snapshot it has reached
(a restore, a new cluster, a second deployment sharing Redis: L2 is emptied), for less than the
log's window, and only once the changes it covers were applied to L2 and L3 (not while either is
dirty).

Without the triggers (a schema without pre_007) there is nothing to listen to: the listener
says so once in the log, and the cache is what it was before database events, TTLs and the
service's own invalidations. It looks again every ``recheck`` seconds, so a ``schema apply``
made while the service runs turns database events on without a restart (the cache is emptied
then, this process's L1 at least: nothing says what changed before the triggers were there). An
unexpected error in the thread makes the cache suspect and the listener reconnects, as for a
lost connection.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db.cache.layered import LayeredCache
from truelabel_db.catalog import cache_changes
from truelabel_db.catalog.cache_changes import Change
from truelabel_db.postgres import redact

POSITION_KEY = "tl:cache:db-position"
APPLICATION_NAME = "truelabel-cache-listener"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ListenerConfig:
    poll: float = 1.0                       # a sweep at least this often (also a liveness check)
    retry: float = 0.2                      # between reconnection attempts
    keep: timedelta = cache_changes.KEEP  # the change log's window
    coalesce: float = 0.03                  # at most one sweep per this many seconds
    trim_every: float = 60.0
    recheck: float = 30.0                   # looking again for triggers a database did not have
    connect_timeout: int = 3


class DatabaseListener:
    def __init__(self, conninfo: str, cache: LayeredCache, apply: Callable[[Sequence[Change]], Any],
                 config: ListenerConfig = ListenerConfig()) -> None:
        self.conninfo, self.cache, self.apply, self.config = conninfo, cache, apply, config
        self.connected = threading.Event()
        self.backend_pid: int | None = None
        self.sweeps = 0
        self.reconnects = 0
        self.unavailable: str | None = None  # why database events are not used here
        self._snapshot: str | None = None
        self._identity: str | None = None
        self._swept_at: datetime | None = None
        self._trimmed = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cache-db-listener", daemon=True)

    def start(self, wait: float = 5.0) -> "DatabaseListener":
        self._thread.start()
        self.connected.wait(wait)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    # -- the loop --------------------------------------------------------------------------
    def _run(self) -> None:
        said = False
        while not self._stop.is_set():
            try:
                self._listen()
            except (psycopg.Error, OSError) as exc:
                if self.unavailable is not None:  # looking again for the triggers: say why it could not
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    log.warning("could not look for the cache's triggers: %s", redact(first))
            except Exception:  # a bug or a surprise must not end the thread and leave the cache trusted
                log.exception("the cache's database listener failed; the cache is suspect until it is back")
            if self.unavailable is not None:
                if not said:
                    log.warning("cache invalidation by database events is off: %s; cached answers are "
                                "invalidated by this service's own events and their TTLs only", self.unavailable)
                said = True
                self._stop.wait(self.config.recheck)
                continue
            if self.connected.is_set() or self._snapshot is not None:
                self._lost()
            self._stop.wait(self.config.retry)

    def _lost(self) -> None:
        """Deaf from now until the next sweep: trust nothing shared, keep nothing local."""
        if not self.cache.suspect:
            self.cache.mark_suspect()
        self.connected.clear()

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.conninfo, autocommit=True, application_name=APPLICATION_NAME,
                               connect_timeout=self.config.connect_timeout, keepalives=1, keepalives_idle=5,
                               keepalives_interval=2, keepalives_count=2, tcp_user_timeout=5000)

    def _listen(self) -> None:
        with self._connect() as conn:
            if not cache_changes.installed(conn):
                self.unavailable = "the database has no cache change triggers (copy or `schema apply` adds them)"
                self.cache.trust_again()  # today's rules only, as before database events
                self.connected.set()
                return
            self.connected.clear()  # whatever it was before (triggers just added): not until caught up
            if self.unavailable is not None:
                self.cache.mark_suspect()  # L1 holds answers from before the triggers, unswept by anyone
            self.backend_pid = conn.info.backend_pid
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(cache_changes.CHANNEL)))
            self._catch_up(conn)
            self.cache.trust_again()
            if self.unavailable is not None:
                log.warning("cache invalidation by database events is on: the triggers are there now")
                self.unavailable = None
            self.connected.set()
            swept = time.monotonic()
            while not self._stop.is_set():
                for _ in conn.notifies(timeout=self.config.poll, stop_after=1):
                    pass
                pause = self.config.coalesce - (time.monotonic() - swept)
                if pause > 0 and self._stop.wait(pause):
                    return
                for _ in conn.notifies(timeout=0):  # what came meanwhile: this sweep reads it
                    pass
                swept = time.monotonic()
                self._sweep(conn)
                self._maybe_trim(conn)

    def _catch_up(self, conn: psycopg.Connection[Any]) -> None:
        """From the position kept (here, else in Redis): sweep; from nowhere: forget L2."""
        if self._identity is None:
            self._identity = cache_changes.database_identity(conn)
        if self._snapshot is None:
            self._snapshot = self._shared_position(conn)
            if self._snapshot is None:
                self._snapshot = cache_changes.current_snapshot(conn)
                self.cache.flush()  # nothing says what the shared layers missed before us
                return
        else:
            self.reconnects += 1
        if ((self._swept_at is not None and self._swept_at < cache_changes.oldest_kept(conn, self.config.keep))
                or cache_changes.trimmed_past(conn, self._snapshot)):
            self._snapshot = cache_changes.current_snapshot(conn)
            self.cache.flush()  # the log no longer holds all it missed: what changed cannot be named
            return
        self._sweep(conn)

    def _sweep(self, conn: psycopg.Connection[Any]) -> None:
        assert self._snapshot is not None
        swept = cache_changes.sweep(conn, self._snapshot)
        if swept.changes:
            self.apply(swept.changes)
        self._snapshot, self._swept_at = swept.snapshot, swept.now
        self.sweeps += 1
        if self.cache.repair_l3() and self.cache.repair_l2():  # L3 first: L2 may hold copies of what it held
            self._save_position(swept.snapshot)

    def _maybe_trim(self, conn: psycopg.Connection[Any]) -> None:
        if time.monotonic() - self._trimmed >= self.config.trim_every:
            self._trimmed = time.monotonic()
            cache_changes.trim(conn, self.config.keep)

    # -- the position shared through Redis ---------------------------------------------------
    def _shared_position(self, conn: psycopg.Connection[Any]) -> str | None:
        """The last listener's snapshot, if it was of this database's history (else None)."""
        raw = self.cache.l2.get_raw(POSITION_KEY) if self.cache.l2 is not None else None
        if raw is None:
            return None
        try:
            saved = json.loads(raw)
            snapshot, identity = str(saved["snapshot"]), str(saved["identity"])
        except (ValueError, KeyError, TypeError):
            return None  # an older format or garbage: not evidence of anything
        if identity != self._identity:
            return None
        try:
            with conn.transaction():
                if cache_changes.snapshot_ahead(conn, snapshot):
                    return None  # a restore went back in time: that snapshot is of another history
        except psycopg.DataError:
            return None
        return snapshot

    def _save_position(self, snapshot: str) -> None:
        if self.cache.l2 is not None:
            # shorter-lived than the log's window: a position Redis still holds was swept recently
            self.cache.l2.set_raw(POSITION_KEY, json.dumps({"snapshot": snapshot, "identity": self._identity}),
                                  self.config.keep.total_seconds() / 2)
