"""Verification (plan §2.4): both sides reduced to one canonical form and compared."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from truelabel_db.verify.compare import VerifyReport, verify


def resync_check(source: Path, target_url: str) -> Callable[[], int]:
    """The follower's periodic integrity check: verify, resync what differs, say how many rows."""
    def check() -> int:
        report = verify(source, target_url, repair=True)
        return sum(v.repaired for v in report.tables.values())
    return check


__all__ = ["VerifyReport", "resync_check", "verify"]
