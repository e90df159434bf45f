"""Retention: which backups to delete, as a plan first, then ``prune`` carries it out.

The plan keeps weekly full backups four weeks: by default a complete backup is kept while it is
younger than 28 days, and the newest complete backup of each kind is kept whatever its age (an
old backup is better than none). A backup left incomplete by a crash is deleted once it is
older than a day (younger, it may still be being written). A backup that fails its checks (a
manifest or verification record that is not its own) is never deleted automatically and never
counts as the newest: it is evidence, for the operator to look at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from truelabel_db.backup.manifest import utc_now
from truelabel_db.backup.repository import Listing, list_backups
from truelabel_db.backup.storage import Storage

INCOMPLETE_GRACE = timedelta(days=1)


@dataclass(frozen=True)
class RetentionPolicy:
    keep_days: int = 28
    keep_at_least: int = 1


@dataclass
class PrunePlan:
    delete: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"delete": self.delete, "keep": self.keep, "reasons": self.reasons}


def plan_prune(backups: list[Listing], policy: RetentionPolicy, now: datetime) -> PrunePlan:
    plan = PrunePlan()
    cutoff = now - timedelta(days=policy.keep_days)
    newest: dict[str, list[str]] = {}
    for b in sorted((b for b in backups if b.manifest), key=lambda b: b.manifest.created_at, reverse=True):  # type: ignore[union-attr]
        newest.setdefault(b.manifest.kind, []).append(b.id)  # type: ignore[union-attr]
    protected = {i for ids in newest.values() for i in ids[:policy.keep_at_least]}
    for b in backups:
        if b.problem:
            plan.keep.append(b.id)
            plan.reasons[b.id] = f"fails its checks, kept for inspection: {b.problem}"
        elif b.manifest is None:
            stamp = _id_time(b.id)
            if stamp is not None and stamp < now - INCOMPLETE_GRACE:
                plan.delete.append(b.id)
                plan.reasons[b.id] = "incomplete, older than a day"
            else:
                plan.keep.append(b.id)
                plan.reasons[b.id] = "incomplete, may still be running"
        elif b.id in protected:
            plan.keep.append(b.id)
            plan.reasons[b.id] = f"among the newest {policy.keep_at_least} {b.manifest.kind} backups"
        elif b.manifest.created < cutoff:
            plan.delete.append(b.id)
            plan.reasons[b.id] = f"older than {policy.keep_days} days"
        else:
            plan.keep.append(b.id)
            plan.reasons[b.id] = f"within {policy.keep_days} days"
    return plan


def _id_time(backup_id: str) -> datetime | None:
    from datetime import timezone

    try:
        stamp = backup_id.split("-")[1]
        return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except (IndexError, ValueError):
        return None


def prune(storage: Storage, policy: RetentionPolicy = RetentionPolicy(), *, dry_run: bool = False,
          now: datetime | None = None) -> PrunePlan:
    plan = plan_prune(list_backups(storage), policy, now or utc_now())
    if not dry_run:
        for backup_id in plan.delete:
            storage.delete_backup(backup_id)
    return plan
