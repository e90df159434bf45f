"""The DR drill (plan §5.4): validate the latest backup → restore it next to production →
validate the data → report, each step timed, everything undone on failure.

It reports the two figures a recovery is judged by. **RTO**, the time from the decision to
recover to a usable restored database (here: the drill's start to the end of data validation).
**RPO**, the data at risk: with a PITR archive, the age of its newest WAL segment (what a
recovery could not bring back if production vanished now); without one, the age of the backup
(and the rows production gained since it, which a restore of that backup alone would lose).
The drill restores into a new database on production's server, never touches production's own
database, and drops its copy afterwards unless asked to keep it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from truelabel_db.backup.crypto import sha256_of
from truelabel_db.backup.database import (
    database_name,
    drop_database,
    row_counts,
    sibling_url,
)
from truelabel_db.backup.errors import BackupError, BackupIntegrityError
from truelabel_db.backup.logical import restore_backup
from truelabel_db.backup.manifest import Manifest, utc_now
from truelabel_db.backup.notify import Notifier
from truelabel_db.backup.repository import (
    latest_complete,
    load_verification,
    open_sealed,
)
from truelabel_db.backup.storage import Storage
from truelabel_db.errors import ExitCode, TrueLabelError
from truelabel_db.pitr.repo import PitrRepo
from truelabel_db.postgres import connect, describe, one


@dataclass
class DrillStep:
    name: str
    seconds: float
    ok: bool
    detail: str


@dataclass
class DrillReport:
    ok: bool = False
    backup_id: str = ""
    restored_to: str = ""
    kept: bool = False
    steps: list[DrillStep] = field(default_factory=list)
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    rpo_source: str = ""
    rows_since_backup: int | None = None
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DrillFailed(BackupError):
    """A drill step failed; ``report`` says which, with the steps that ran and their times."""

    exit_code = ExitCode.DRILL

    def __init__(self, message: str, report: DrillReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class _Drill:
    production_url: str
    storage: Storage
    key: bytes
    pitr_repo: PitrRepo | None
    jobs: int
    work_dir: Path | None
    say: Callable[[str], None]
    report: DrillReport = field(default_factory=DrillReport)
    manifest: Manifest | None = None
    restored_url: str | None = None

    def step(self, name: str, action: Callable[[], str]) -> None:
        started = time.perf_counter()
        try:
            detail = action()
        except TrueLabelError as exc:
            self.report.steps.append(DrillStep(name, round(time.perf_counter() - started, 3), False, str(exc)))
            raise
        self.report.steps.append(DrillStep(name, round(time.perf_counter() - started, 3), True, detail))
        self.say(f"✓ {name} ({self.report.steps[-1].seconds:.2f}s): {detail}")

    def validate_backup(self) -> str:
        latest = latest_complete(self.storage, key=self.key)
        self.manifest = open_sealed(self.storage, latest.id, self.key)
        self.report.backup_id = latest.id
        scratch = str(self.work_dir) if self.work_dir else None
        with tempfile.TemporaryDirectory(prefix="truelabel-drill-", dir=scratch) as tmp:
            for entry in self.manifest.files:
                local = Path(tmp) / "file"
                self.storage.get_file(f"{latest.id}/files/{entry.name}.enc", local)
                if local.stat().st_size != entry.size or sha256_of(local) != entry.sha256:
                    raise BackupIntegrityError(f"backup {latest.id}: {entry.name} does not match its checksum")
                local.unlink()
        try:
            previous = load_verification(self.storage, latest.id, self.manifest, self.key)
        except BackupIntegrityError as exc:  # only the drill's restore is proof; this one is not
            last = f"its verification record is ignored: {exc}"
        else:
            last = "never test-restored before" if previous is None else \
                f"last test restore {'passed' if previous.ok else 'FAILED'} at {previous.verified_at}"
        return f"{latest.id}: seal and {len(self.manifest.files)} checksums good; {last}"

    def restore(self) -> str:
        stamp = utc_now().strftime("%Y%m%d%H%M%S")
        self.restored_url = sibling_url(self.production_url, f"{database_name(self.production_url)}_dr_{stamp}")
        result = restore_backup(self.storage, self.report.backup_id, self.restored_url, self.key, jobs=self.jobs,
                                work_dir=self.work_dir)
        self.report.restored_to = describe(self.restored_url)
        if not result.ok:
            raise BackupIntegrityError(f"restored rows differ from the manifest in {', '.join(result.mismatches)}")
        return f"into {self.report.restored_to}, {sum(result.row_counts.values()):,} rows"

    def validate_data(self) -> str:
        assert self.manifest is not None and self.restored_url is not None
        with connect(self.restored_url, autocommit=True) as conn:
            conn.execute("CREATE TEMP TABLE truelabel_drill_probe (n int)")
            conn.execute("INSERT INTO truelabel_drill_probe VALUES (1)")
            invalid = one(conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid"))[0]
        if invalid:
            raise BackupIntegrityError(f"the restored database has {invalid} invalid index(es)")
        with connect(self.production_url) as conn:
            now = row_counts(conn)
        self.report.rows_since_backup = sum(now.values()) - sum(self.manifest.row_counts.values())
        return (f"{len(self.manifest.row_counts)} tables match the manifest; writable; indexes valid; "
                f"production has {self.report.rows_since_backup:+,} rows since the backup")

    def figures(self) -> str:
        newest = self.pitr_repo.newest_wal() if self.pitr_repo is not None else None
        if newest is not None:
            self.report.rpo_seconds = round((utc_now() - newest[1]).total_seconds(), 3)
            self.report.rpo_source = f"newest archived WAL {newest[0]}"
        elif self.manifest is not None:
            self.report.rpo_seconds = round((utc_now() - self.manifest.created).total_seconds(), 3)
            self.report.rpo_source = f"age of backup {self.manifest.id} (no WAL archive given)"
        return f"RTO {self.report.rto_seconds:.2f} s, RPO {self.report.rpo_seconds:.2f} s ({self.report.rpo_source})"

    def rollback(self) -> None:
        if self.restored_url is not None:
            try:
                drop_database(self.restored_url)
            except TrueLabelError as exc:
                self.say(f"could not drop {describe(self.restored_url)}: {exc}")


def run_drill(production_url: str, storage: Storage, key: bytes, *, pitr_repo: PitrRepo | None = None,
              keep: bool = False, jobs: int = 4, work_dir: Path | None = None,
              notifier: Notifier | None = None, say: Callable[[str], None] = lambda line: None) -> DrillReport:
    """Run the drill; raise :class:`DrillFailed` (with the report on it) when a step fails."""
    drill = _Drill(production_url, storage, key, pitr_repo, jobs, work_dir, say)
    notifier = notifier or Notifier()
    started = time.perf_counter()
    try:
        drill.step("validate backup", drill.validate_backup)
        drill.step("restore next to production", drill.restore)
        drill.step("validate data", drill.validate_data)
        drill.report.rto_seconds = round(time.perf_counter() - started, 3)
        drill.step("report", drill.figures)
    except TrueLabelError as exc:
        drill.rollback()
        drill.report.error = str(exc)
        notifier.notify("dr-drill", "failure", **drill.report.to_dict())
        where = drill.report.steps[-1].name if drill.report.steps else "start"
        raise DrillFailed(f"DR drill failed at {where}: {exc}", drill.report) from exc
    drill.report.ok, drill.report.kept = True, keep
    if not keep:
        drill.rollback()
    notifier.notify("dr-drill", "success", **drill.report.to_dict())
    return drill.report
