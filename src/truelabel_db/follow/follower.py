"""The follower: reads the changelog, applies it, reports lag, alerts once per episode.

Exactly once: each batch and the position it reaches commit in one PostgreSQL transaction, so
a follower killed at any moment resumes after the last committed batch; re-applying "make the
row equal to its current state" is harmless anyway. It survives a PostgreSQL restart and a
locked SQLite file by backing off and retrying, and trims the changelog behind the committed
position with a short write transaction that gives way to the app when it is busy.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg

from truelabel_db.catalog import cache_changes, changelog, copy_runs, follow_state
from truelabel_db.errors import SourceError, TargetError
from truelabel_db.follow.apply import apply_batch
from truelabel_db.follow.batch import SchemaChanged, read_batch
from truelabel_db.hooks import BackgroundHook
from truelabel_db.legacy.source import connect as sqlite_connect
from truelabel_db.postgres import connect
from truelabel_db.rows.apply import ApplyPolicy
from truelabel_db.rows.legacy import LegacyRows
from truelabel_db.rows.recorded import recorded_mapping
from truelabel_db.schema.mapping import Mapping

log = logging.getLogger(__name__)
PUBLISH_EVERY = 0.25  # seconds between publications of the lag while batches keep coming
# Our batches fire the cache's triggers in PostgreSQL; while no service listens (and trims),
# the follower keeps that log to its window itself.
CACHE_LOG_TRIM_EVERY = 60.0


class NothingToFollow(copy_runs.NoMigration):
    """No finished copy with a changelog position: there is no starting point."""


@dataclass(frozen=True)
class FollowOptions:
    batch_size: int = 5_000
    lag_threshold_ms: int = 1_000
    on_lag: str | None = None          # a command (no shell) or an http(s) URL to POST to
    poll_interval: float = 0.05
    trim_every: int = 20               # batches between changelog trims
    max_backoff: float = 10.0
    verify_every: float | None = None  # seconds between integrity checks (plan: integrity-check)


@dataclass
class FollowStats:
    position: int = 0
    changes_applied: int = 0
    batches: int = 0
    lag_rows: int = 0
    lag_ms: int = 0
    rows_per_second: float = 0.0
    alerts: int = 0
    retries: int = 0
    trimmed: int = 0
    verifications: int = 0
    rows_resynced: int = 0
    quarantined: int = 0      # changes that went to the quarantine instead of PostgreSQL
    pulled_forward: int = 0   # rows applied ahead of their own changelog entry to settle a constraint
    held: int = 0             # rows kept in PostgreSQL under --orphans keep that SQLite deleted
    lag_samples_ms: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out.pop("lag_samples_ms")
        return out


IntegrityCheck = Callable[[], int]  # verifies and resyncs; returns how many rows it resynced


class Follower:
    """Applies the changelog of one legacy file to PostgreSQL.

    ``integrity_check``, when given, runs every ``options.verify_every`` seconds while caught up
    (the plan's integrity-check); the orchestrator passes verify's, the follower does not know it.
    """

    def __init__(self, source: Path, target_url: str, options: FollowOptions = FollowOptions(),
                 integrity_check: IntegrityCheck | None = None) -> None:
        self.source = source
        self._integrity_check = integrity_check
        self.source_key = str(source.resolve())
        self.url = target_url
        self.options = options
        self.stats = FollowStats()
        self._alerting = False
        self._stop = threading.Event()
        self._sqlite = sqlite_connect(source)
        self._pg: psycopg.Connection | None = None
        self._published_lag: tuple[int, int] | None = None
        self._published_at = 0.0
        self._cache_log_trimmed_at = time.monotonic()
        self._apply_policy: ApplyPolicy | None = None
        self._recorded_mapping: Mapping | None = None
        self._lag_hook = BackgroundHook(options.on_lag, "lag alert")

    def stop(self) -> None:
        self._stop.set()

    def start_position(self) -> int:
        """Where to start: the committed position, else where the last copy's snapshot stood."""
        pg = self._target()
        copy_runs.require_migration(pg)
        committed = follow_state.position(pg, self.source_key)
        if committed is not None:
            return committed
        copied = copy_runs.followable_position(pg)
        if copied is None:
            raise NothingToFollow("nothing to follow from: copy the legacy file with capture installed first "
                                  "(`truelabel-db capture install`, then `truelabel-db copy`)")
        follow_state.start_at(pg, self.source_key, copied)
        return copied

    def run(self, *, until_caught_up: bool = False, max_seconds: float | None = None) -> FollowStats:
        """Apply batches until stopped (or caught up, or out of time).

        Caught up means nothing left to apply, or every change that existed when the run began
        applied: under an app writing without pause the changelog is never empty at the moment
        it is read, and the cutover drains the rest anyway.
        """
        deadline = time.monotonic() + max_seconds if max_seconds else None
        backoff = 0.0
        self._last_verify = time.monotonic()
        started = False
        target: int | None = None
        while not self._stop.is_set() and (deadline is None or time.monotonic() < deadline):
            try:
                if not started:  # the committed position, read again after any reconnect
                    self.stats.position = self.start_position()
                    started = True
                if until_caught_up and target is None:
                    target = self._changelog_end()
                applied = self.step()
                backoff = 0.0
                if until_caught_up and applied and target is not None and self.stats.position >= target:
                    self._measure_lag(None)  # where the changelog stands now, for the caller
                    self._publish()
                    break
            except (psycopg.OperationalError, TargetError) as exc:
                if isinstance(exc, copy_runs.NoMigration):  # nothing a retry could change
                    raise
                backoff = self._back_off(backoff, exc)
                started = False
                continue
            except SourceError as exc:
                if isinstance(exc, SchemaChanged):
                    raise
                backoff = self._back_off(backoff, exc)
                continue
            if not applied:
                self._maybe_verify()
                if until_caught_up:
                    break
                self._stop.wait(self.options.poll_interval)
        return self.stats

    def step(self) -> int:
        """One batch: read, apply with its position, measure; 0 when there was nothing to do."""
        try:
            batch = read_batch(self._sqlite, self.stats.position, self.options.batch_size, self._mapping())
        except sqlite3.Error as exc:
            from truelabel_db.legacy.source import translate_sqlite_error

            raise translate_sqlite_error(exc, self.source) from exc
        self._measure_lag(batch.oldest_at_ms if batch else None)
        if batch is None:
            if self._published_lag != (0, 0):
                self._publish()  # caught up: say so once, not on every poll
            return 0
        started = time.perf_counter()
        outcome = apply_batch(self._target(), self.source_key, batch, LegacyRows(self._sqlite),
                              mapping=self._mapping(), policy=self._policy())
        self.stats.quarantined += outcome.quarantined
        self.stats.pulled_forward += outcome.pulled_forward
        self.stats.held += outcome.held
        elapsed = max(time.perf_counter() - started, 1e-6)
        self.stats.position = batch.last_seq
        self.stats.changes_applied += batch.changes
        self.stats.batches += 1
        self.stats.rows_per_second = round(batch.changes / elapsed, 1)
        if self.stats.batches % self.options.trim_every == 0:
            self.trim()
        if time.monotonic() - self._cache_log_trimmed_at >= CACHE_LOG_TRIM_EVERY:
            self._trim_cache_log()
        if time.monotonic() - self._published_at >= PUBLISH_EVERY:
            self._publish()  # its own commit: not after every batch, it would double their cost
        return batch.changes

    def _trim_cache_log(self) -> None:
        """Housekeeping, never a reason to stop following: a schema applied before the cache's
        log existed has nothing to trim; a lost connection is left to the next batch's handling."""
        self._cache_log_trimmed_at = time.monotonic()
        try:
            cache_changes.trim(self._target())
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            log.warning("the cache's change log was not trimmed: %s", str(exc).strip().splitlines()[0])

    def _mapping(self) -> Mapping:
        """The mapping the copy ran with (extended for drift), read once."""
        if self._recorded_mapping is None:
            self._recorded_mapping = recorded_mapping(self._target())
        return self._recorded_mapping

    def _policy(self) -> ApplyPolicy:
        """The orphan policy the copy ran with applies to orphans made after it, too."""
        if self._apply_policy is None:
            self._apply_policy = ApplyPolicy(orphans=copy_runs.orphan_policy(self._target()))
        return self._apply_policy

    def _maybe_verify(self) -> None:
        """The plan's integrity-check: when caught up and due, verify and resync what differs."""
        every = self.options.verify_every
        if every is None or self._integrity_check is None or time.monotonic() - self._last_verify < every:
            return
        self.stats.rows_resynced += self._integrity_check()
        self.stats.verifications += 1
        self._last_verify = time.monotonic()

    def _target(self) -> psycopg.Connection:
        if self._pg is None or self._pg.closed:
            self._pg = connect(self.url, autocommit=True, application_name="truelabel-db follow",
                               migration_writer=True)
        return self._pg

    def _back_off(self, current: float, exc: Exception) -> float:
        self.stats.retries += 1
        if self._pg is not None:
            self._pg.close()
            self._pg = None
        delay = min(self.options.max_backoff, max(0.2, current * 2))
        self._stop.wait(delay)
        return delay

    def _changelog_end(self) -> int:
        from truelabel_db.legacy.source import translate_sqlite_error

        try:
            return changelog.end(self._sqlite)
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, self.source) from exc

    def _measure_lag(self, oldest_pending_ms: int | None) -> None:
        from truelabel_db.legacy.source import translate_sqlite_error

        try:
            newest, now_ms = changelog.end_and_now_ms(self._sqlite)
        except sqlite3.Error as exc:  # a locked file: a SourceError the run loop retries
            raise translate_sqlite_error(exc, self.source) from exc
        self.stats.lag_rows = max(0, newest - self.stats.position)
        self.stats.lag_ms = max(0, now_ms - oldest_pending_ms) if oldest_pending_ms and self.stats.lag_rows else 0
        self.stats.lag_samples_ms.append(self.stats.lag_ms)
        above = self.stats.lag_ms > self.options.lag_threshold_ms
        if above and not self._alerting:
            self._alert()
        self._alerting = above

    def _alert(self) -> None:
        """Once per episode: the lag crossed the threshold (re-armed when it falls back). The
        hook runs in the background; its failures are logged, never raised (``hooks``)."""
        self.stats.alerts += 1
        payload = {"event": "lag", "lag_ms": self.stats.lag_ms, "lag_rows": self.stats.lag_rows,
                   "threshold_ms": self.options.lag_threshold_ms, "source": self.source_key}
        self._lag_hook.fire(payload, {"TRUELABEL_LAG_MS": str(self.stats.lag_ms),
                                      "TRUELABEL_LAG_ROWS": str(self.stats.lag_rows)})

    def trim(self) -> int:
        """Delete applied changelog rows; skipped (not waited for) when the app holds the lock."""
        try:
            writer = sqlite_connect(self.source, read_only=False, busy_timeout_ms=50)
        except SourceError:
            return 0
        try:
            writer.execute("BEGIN IMMEDIATE")
            removed = changelog.trim(writer, self.stats.position)
            writer.execute("COMMIT")
        except sqlite3.OperationalError:
            return 0
        finally:
            writer.close()
        self.stats.trimmed += removed
        return removed

    def _publish(self) -> None:
        self._published_at = time.monotonic()
        self._published_lag = (self.stats.lag_rows, self.stats.lag_ms)
        follow_state.publish_lag(self._target(), self.source_key, self.stats.lag_rows, self.stats.lag_ms,
                                 self.stats.rows_per_second)

    def close(self) -> None:
        self._lag_hook.close()
        self._sqlite.close()
        if self._pg is not None:
            self._pg.close()
