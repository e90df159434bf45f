"""``migrate``: the whole plan in one command, checkpointed, resumable, undone on failure.

backup → schema → capture → copy → follow → verify → cutover (plan §2.3). Each finished step
is a checkpoint in the catalog; a rerun skips them. On a failure the
finished steps' rollback handlers run in reverse. They restore the *app's* situation (SQLite
the primary, writable, no gate, no fence), not undo work that stays valid: the copied data and
the follower's position remain, which is what lets a rerun resume instead of start over.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg

from truelabel_db.capture import capture_status, install_capture
from truelabel_db.catalog import changelog, follow_state, migrate_checkpoints
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.cutover.run import CutoverOptions, cutover
from truelabel_db.errors import ExitCode, ReconciliationError, TrueLabelError
from truelabel_db.follow import Follower
from truelabel_db.legacy.source import open_schema, take_snapshot
from truelabel_db.postgres import connect
from truelabel_db.schema.ddl import apply_schema
from truelabel_db.schema.drift import detect, require_app_tables
from truelabel_db.verify.compare import verify

STEPS = ("backup", "schema", "capture", "copy", "follow", "verify", "cutover")


class MigrateError(TrueLabelError):
    exit_code = ExitCode.MIGRATE


@dataclass(frozen=True)
class MigrateOptions:
    redis_url: str
    work_dir: Path = Path(".truelabel/migrate")
    workers: int = 4
    primary_file: Path | None = None
    switch_cmd: str | None = None
    health_url: str | None = None


@dataclass
class MigrateReport:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"done": self.done, "skipped": self.skipped, "seconds": self.seconds, "details": self.details}


class _Migration:
    def __init__(self, source: Path, url: str, options: MigrateOptions, say: Callable[[str], None]) -> None:
        self.source, self.url, self.options, self.say = source, url, options, say
        self.key = str(source.resolve())
        self.report = MigrateReport()
        self.installed_capture = False

    def checkpoint_done(self, conn: psycopg.Connection, step: str) -> bool:
        return migrate_checkpoints.is_done(conn, self.key, step)

    def record(self, conn: psycopg.Connection, step: str, detail: dict[str, Any]) -> None:
        migrate_checkpoints.record(conn, self.key, step, detail)

    def run(self) -> MigrateReport:
        # a file that is not the app's is refused before anything is made of it (a backup, the catalog);
        # one gone since a finished run (archived after the cutover) is the steps' business, as before
        if self.source.exists():
            require_app_tables(detect(open_schema(self.source)), str(self.source))
        with connect(self.url, autocommit=True) as conn:
            apply_schema(conn, phases=("pre",))  # the checkpoints need their table first
            finished: list[str] = []
            for step in STEPS:
                if self.checkpoint_done(conn, step):
                    self.report.skipped.append(step)
                    continue
                started = time.perf_counter()
                try:
                    detail = getattr(self, f"step_{step}")() or {}
                except BaseException as exc:
                    self.undo(finished)
                    if isinstance(exc, TrueLabelError):
                        raise MigrateError(f"migrate stopped at {step} (finished steps undone where "
                                           f"needed; run it again to resume): {exc}") from exc
                    raise
                self.record(conn, step, detail)
                finished.append(step)
                self.report.done.append(step)
                self.report.details[step] = detail
                self.report.seconds[step] = round(time.perf_counter() - started, 3)
                self.say(f"{step:<8} done in {self.report.seconds[step]:.2f}s")
        return self.report

    def step_backup(self) -> dict[str, Any]:
        """The legacy file before any step touches it: sealed into the backup repository when one
        is configured (and then nowhere in plain), else a plain copy readable by its owner only."""
        import os

        from truelabel_db.backup.storage import REPO_ENV

        if os.environ.get(REPO_ENV):
            return self.store_backup()
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        target = (self.options.work_dir / f"backup-{stamp}.db").resolve()
        take_snapshot(self.source, target)
        self.say(f"backup   not encrypted (set {REPO_ENV} and a key to seal it): {target}, mode 0600")
        return {"path": str(target), "encrypted": False}

    def store_backup(self) -> dict[str, Any]:
        """An encrypted, checksummed copy in the configured repository (its staging is private
        and removed)."""
        from truelabel_db.backup import load_key, open_storage
        from truelabel_db.backup.legacy import backup_legacy

        key = load_key()
        storage = open_storage(None, create=True)
        manifest = backup_legacy(self.source, storage, key, work_dir=self.options.work_dir)
        return {"backup_id": manifest.id, "repository": storage.describe(), "encrypted": True}

    def step_schema(self) -> dict[str, Any]:
        with connect(self.url, autocommit=True) as conn:
            return apply_schema(conn, phases=("pre",)).to_dict()

    def step_capture(self) -> dict[str, Any]:
        status = capture_status(self.source)
        if not status.installed:
            status = install_capture(self.source)
            self.installed_capture = True
        return {"position": status.last_seq}

    def step_copy(self) -> dict[str, Any]:
        result = run_copy(self.source, self.url, CopyOptions(workers=self.options.workers,
                                                             work_dir=self.options.work_dir / "copy",
                                                             truncate=True))
        return {"run_id": result.run_id, "read": result.totals.read, "quarantined": result.totals.quarantined}

    def step_follow(self) -> dict[str, Any]:
        follower = Follower(self.source, self.url)
        try:
            stats = follower.run(until_caught_up=True)
        finally:
            follower.close()
        return {"position": stats.position}

    def step_verify(self) -> dict[str, Any]:
        """Full verification with repair. While the app writes, rows changed after the follower's
        position differ by design (they are in flight); any other difference stops the run."""
        report = verify(self.source, self.url, repair=True)
        in_flight = self.pending_keys()
        residual = [f"{name}:{key}" for name, v in report.tables.items()
                    for key in (*v.missing_in_target, *v.extra_in_target, *v.different)
                    if (name, key) not in in_flight]
        if residual:
            raise ReconciliationError(f"PostgreSQL still differs from SQLite after repair: {', '.join(residual[:5])}")
        return {"resynced": sum(v.repaired for v in report.tables.values()), "in_flight": len(in_flight)}

    def pending_keys(self) -> set[tuple[str, str]]:
        """Rows the changelog lists after the follower's committed position."""
        from truelabel_db.legacy.source import reading

        with connect(self.url) as conn:
            position = follow_state.position(conn, self.key) or 0
        with reading(self.source) as legacy:
            return {(t, k.lower()) for t, keys in changelog.keys_after(legacy, position).items() for k in keys}

    def step_cutover(self) -> dict[str, Any]:
        options = CutoverOptions(redis_url=self.options.redis_url, primary_file=self.options.primary_file,
                                 switch_cmd=self.options.switch_cmd, health_url=self.options.health_url)
        return cutover(self.source, self.url, options, self.say).to_dict()

    def undo(self, finished: list[str]) -> None:
        """Rollback handlers of the steps this run finished, newest first.

        Only capture has one: triggers this run installed cost the app's writes ~10 % and,
        while no copy depends on them yet, come out again. (The cutover undoes itself; the
        backup, schema, copy and follower position stay, so that a rerun resumes.)
        """
        for step in reversed(finished):
            if step == "capture" and self.installed_capture and "copy" not in finished:
                from truelabel_db.capture import remove_capture

                remove_capture(self.source)
                self.say("undo capture: triggers removed")


def migrate(source: Path, target_url: str, options: MigrateOptions,
            say: Callable[[str], None] = lambda _: None) -> MigrateReport:
    return _Migration(source, target_url, options, say).run()
