"""The cutover, step by step, with the write pause measured from gate raised to gate lowered.

1. catch up      the follower applies until the lag is small
2. raise gate    the app stops starting writes (the pause starts)
3. lock + fence  ``BEGIN IMMEDIATE`` waits for writes in flight, then in one transaction a
                 marker goes into the changelog and the fence triggers go in: nothing can be
                 written to SQLite after the marker
4. drain         the follower applies until the marker itself is applied (it travels the same
                 path as the data, so "drained" is proven, not assumed)
5. verify        the rows the changelog still lists are compared, and resynced if they differ
6. sequences     every sequence behind a mapped column is set past its column's maximum
   reverse capture  PostgreSQL's own changes are recorded from here on (for ``rollback``)
7. switch        the switch command runs; PostgreSQL is recorded as the primary (the catalog,
                 which every tool of ours checks before it writes), its fence from an earlier
                 rollback is lifted, the new primary is published, the health URL polled
8. lower gate    the app writes again, to PostgreSQL (the pause ends)

A heartbeat keeps the gate raised however long a step takes; a gate that lapsed anyway
(Redis lost for a whole expiry) stops the cutover before the switch. Any failure before the
switch is complete puts everything back: fence removed, primary still SQLite, gate lowered. A
failure after the switch (the health URL never healthy) goes back too, but never by simply
republishing SQLite: if the app has written to PostgreSQL meanwhile, those writes are replayed
into SQLite first, as a rollback does. The report gives each step's duration and the write pause.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from psycopg import sql

from truelabel_db import guard
from truelabel_db.capture.changelog import write_lock
from truelabel_db.catalog import changelog, primary, reverse_changelog
from truelabel_db.cutover.fence import app_tables, fence_ddl, remove_fence
from truelabel_db.cutover.gate import Gate, GateError, Heartbeat, connect_redis
from truelabel_db.cutover.pg_fence import remove_pg_fence
from truelabel_db.cutover.reverse import Rollback
from truelabel_db.errors import ExitCode, TrueLabelError
from truelabel_db.follow import Follower, FollowOptions
from truelabel_db.hooks import run_hook
from truelabel_db.postgres import connect, describe
from truelabel_db.rows.recorded import recorded_mapping
from truelabel_db.schema.mapping import TableMap


class CutoverError(TrueLabelError):
    exit_code = ExitCode.CUTOVER


@dataclass(frozen=True)
class CutoverOptions:
    redis_url: str
    primary_file: Path | None = None
    switch_cmd: str | None = None
    health_url: str | None = None
    health_timeout: float = 30.0
    max_lag_rows: int = 200  # the backlog left for the drain, under the write pause
    drain_timeout: float = 60.0
    grace_ms: int = 100          # lets a write that passed the gate check just before finish
    gate_ttl_ms: int = 30_000


@dataclass
class CutoverReport:
    steps: list[tuple[str, float]] = field(default_factory=list)
    write_pause_ms: float = 0.0
    marker_seq: int = 0
    verified_rows: int = 0
    resynced_rows: int = 0
    switched: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"steps": [{"step": s, "ms": round(ms, 1)} for s, ms in self.steps],
                "write_pause_ms": round(self.write_pause_ms, 1), "marker_seq": self.marker_seq,
                "verified_rows": self.verified_rows, "resynced_rows": self.resynced_rows,
                "switched": self.switched}


class _Run:
    def __init__(self, source: Path, target_url: str, options: CutoverOptions,
                 say: Callable[[str], None]) -> None:
        self.source, self.url, self.options, self.say = source, target_url, options, say
        self.report = CutoverReport()
        self.gate = Gate(connect_redis(options.redis_url), options.primary_file)
        with connect(target_url, autocommit=True) as conn:
            guard.writing_to_postgres(conn, source, "cutover")  # already cut over: nothing to do twice
            self.mapping = recorded_mapping(conn)
        self.follower = Follower(source, target_url, FollowOptions(poll_interval=0.002, trim_every=10**9))
        self.fenced = False
        self.reverse_capturing = False
        self.sequences: list[tuple[TableMap, str, str]] = []

    def step(self, name: str, action: Callable[[], object]) -> object:
        started = time.perf_counter()
        result = action()
        ms = (time.perf_counter() - started) * 1000
        self.report.steps.append((name, ms))
        self.say(f"{name:<12} {ms:9.1f} ms")
        return result

    def run(self) -> CutoverReport:
        pause_started = time.perf_counter()
        try:
            self.step("catch up", self.catch_up)
            try:
                self.step("reverse capture", self.start_reverse_capture)  # before the pause: the app
                self.step("raise gate", lambda: self.gate.raise_(self.options.gate_ttl_ms))  # is not there yet
                pause_started = time.perf_counter()
                with Heartbeat(self.gate, self.options.gate_ttl_ms) as heartbeat:
                    self.step("lock+fence", self.lock_and_fence)
                    self.step("drain", self.drain)
                    self.step("verify", self.verify_changed)
                    self.step("sequences", self.set_sequences)
                    heartbeat.check("the switch")
                    self.step("switch", self.switch)
            except BaseException as exc:
                where = self.undo()
                if isinstance(exc, TrueLabelError):
                    raise CutoverError(f"cutover failed and was undone ({where}): {exc}") from exc
                raise
        finally:
            self.follower.close()
        self.step("lower gate", self.gate.lower)
        self.report.write_pause_ms = (time.perf_counter() - pause_started) * 1000
        return self.report

    def catch_up(self) -> None:
        """Apply until the backlog is small; the app keeps writing, so "none" may never come."""
        self.sequences = self.find_sequences()
        self.follower.stats.position = self.follower.start_position()
        while True:
            applied = self.follower.step()
            if self.follower.stats.lag_rows - applied <= self.options.max_lag_rows:
                return

    def lock_and_fence(self) -> None:
        time.sleep(self.options.grace_ms / 1000)
        with write_lock(self.source) as conn:
            self.report.marker_seq = changelog.append_marker(conn, "cutover")
            for statement in fence_ddl(app_tables(conn)):
                conn.execute(statement)
            changelog.record_schema_version(conn)  # the fence is our DDL, not a change of the app's schema
        self.fenced = True

    def drain(self) -> None:
        deadline = time.monotonic() + self.options.drain_timeout
        while self.follower.stats.position < self.report.marker_seq:
            if time.monotonic() > deadline:
                raise CutoverError(f"the marker (seq {self.report.marker_seq}) was not applied within "
                                   f"{self.options.drain_timeout:.0f} s")
            self.follower.run(until_caught_up=True)

    def verify_changed(self) -> None:
        from truelabel_db.verify.keys import verify_keys

        checked, resynced = verify_keys(self.source, self.url)
        self.report.verified_rows, self.report.resynced_rows = checked, resynced

    def find_sequences(self) -> list[tuple[TableMap, str, str]]:
        """(table, column, sequence) behind every mapped column: looked up before the pause."""
        found = []
        with connect(self.url, autocommit=True) as conn:
            for table in self.mapping.tables:
                regclass = table.ident.as_string(conn)
                found += [(table, column, sequence) for column, sequence in conn.execute(
                    "SELECT a.attname, pg_get_serial_sequence(%s, a.attname) FROM pg_attribute a "
                    "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
                    (regclass, regclass)) if sequence]
        return found

    def set_sequences(self) -> None:
        if not self.sequences:
            return
        with connect(self.url, autocommit=True) as conn:
            for table, column, sequence in self.sequences:
                conn.execute(sql.SQL("SELECT setval({}, coalesce(max({}), 0) + 1, false) FROM {}").format(
                    sql.Literal(sequence), sql.Identifier(column), table.ident))

    def start_reverse_capture(self) -> None:
        """From now on PostgreSQL's changes are recorded, so that a rollback loses nothing.

        Installed before the gate: only the follower writes to PostgreSQL until the switch, and
        the capture function leaves the migration's own sessions out.
        """
        from truelabel_db.cutover.reverse import install_reverse_capture

        with connect(self.url, autocommit=True) as conn:
            reverse_changelog.clear(conn)
            install_reverse_capture(conn, self.mapping)
        self.reverse_capturing = True

    def switch(self) -> None:
        if self.options.switch_cmd:  # no shell, no secrets, killed and reaped at its deadline
            done = run_hook(self.options.switch_cmd, {"event": "switch", "primary": "postgresql",
                                                      "target": describe(self.url)}, timeout=120)
            if not done.ok:
                raise CutoverError(f"the switch command {done.detail}")
        with connect(self.url, autocommit=True) as conn:
            with conn.transaction(), conn.cursor() as cur:
                primary.switch(cur, guard.source_key(self.source), primary.POSTGRESQL, "cutover")
            remove_pg_fence(conn, self.mapping)  # an earlier rollback's: PostgreSQL takes writes again
        self.report.switched = True
        self.gate.publish_primary("postgresql", describe(self.url))
        if self.options.health_url:
            self.wait_healthy(self.options.health_url)

    def wait_healthy(self, url: str) -> None:
        deadline = time.monotonic() + self.options.health_timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
                    last = f"HTTP {response.status}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.1)
        raise CutoverError(f"{url} did not turn healthy within {self.options.health_timeout:.0f} s ({last})")

    def undo(self) -> str:
        """Back to SQLite as the primary, writable; the follower's state is untouched.

        After the switch, writes the app made to PostgreSQL meanwhile are replayed into SQLite
        first (a rollback under the gate this cutover holds); returns what was done.
        """
        done = "SQLite is still the primary"
        if self.report.switched:
            with connect(self.url, autocommit=True) as conn:
                written = reverse_changelog.pending(conn)
            if written:
                Rollback(self.source, self.url, self.gate, self.say).run(gate_held=True)
                self.fenced = self.reverse_capturing = False  # the rollback lifted both
                done = f"SQLite is the primary again, with the {written} change(s) the app made to PostgreSQL"
            else:
                with connect(self.url, autocommit=True) as conn, conn.transaction(), conn.cursor() as cur:
                    primary.switch(cur, guard.source_key(self.source), primary.SQLITE, "cutover undone")
                self.gate.publish_primary("sqlite", str(self.source.resolve()))
            self.report.switched = False
        if self.fenced:
            remove_fence(self.source)
            self.fenced = False
        if self.reverse_capturing:
            from truelabel_db.cutover.reverse import remove_reverse_capture

            with connect(self.url, autocommit=True) as conn:
                remove_reverse_capture(conn, self.mapping)
            self.reverse_capturing = False
        try:
            self.gate.lower()
        except GateError:
            pass  # it expires by itself
        self.say(f"undone: {done}, and writable")
        return done


def cutover(source: Path, target_url: str, options: CutoverOptions,
            say: Callable[[str], None] = lambda _: None) -> CutoverReport:
    return _Run(source, target_url, options, say).run()


