"""``bench verify``: the full verification of a copy beside the copy itself, on the same file.

Both run as their own processes, one after the other in each pass: our copy of the clean
legacy file (through a snapshot, the default), then ``verify`` of that very copy. The target
is a verification no longer than the copy it checks (stretch: 0.3 of it). The verify's peak
memory is its main process's; its SQLite side runs in processes of its own.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from truelabel_db.bench.copy_bench import OURS_DB, SNAPSHOT, bench_ours, clean_legacy, legacy_file
from truelabel_db.bench.measure import run_measured


@dataclass
class VerifyRun:
    copy_seconds: float
    verify_seconds: float
    rows: int
    equal: bool
    mismatched_ranges: int
    verify_peak_rss_mb: float
    dirty: bool = False

    @property
    def ratio(self) -> float:
        return round(self.verify_seconds / self.copy_seconds, 2) if self.copy_seconds else 0.0


@dataclass
class VerifyBenchResult:
    legacy_path: str
    runs: list[VerifyRun] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"legacy_path": self.legacy_path,
                "runs": [{**asdict(r), "verify_time_vs_copy": r.ratio} for r in self.runs]}


def bench_verify_once(legacy: Path, admin_url: str, workers: int, work_dir: Path, *, dirty: bool) -> VerifyRun:
    copied = bench_ours(legacy, admin_url, workers, work_dir / "copy", SNAPSHOT)
    url = psycopg.conninfo.make_conninfo(admin_url, dbname=OURS_DB)
    m = run_measured([sys.executable, "-m", "truelabel_db", "verify", "--source", str(legacy), "--json"],
                     env={**os.environ, "TRUELABEL_TARGET_URL": url})
    if m.returncode not in (0, 7):
        raise RuntimeError(f"verify failed: {m.stderr.strip().splitlines()[-1:]}")
    doc = json.loads(m.stdout)
    tables = doc["tables"].values()
    return VerifyRun(copied.seconds, m.seconds, sum(t["source_rows"] for t in tables), doc["equal"],
                     sum(t["mismatched_buckets"] for t in tables), m.peak_rss_mb, dirty)


def run_verify_bench(scale: float, admin_url: str, workers: int, work_dir: Path, *, runs: int = 1,
                     dirty: bool = True) -> VerifyBenchResult:
    """Copy then verify the clean file (and the dirty one of the same size), ``runs`` times."""
    legacy = clean_legacy(work_dir, scale)
    result = VerifyBenchResult(str(legacy))
    for _ in range(runs):
        result.runs.append(bench_verify_once(legacy, admin_url, workers, work_dir, dirty=False))
        if dirty:
            result.runs.append(bench_verify_once(legacy_file(work_dir, scale, dirty=True), admin_url, workers,
                                                 work_dir, dirty=True))
    return result
