"""The differential test of the whole life cycle: for fixed seeds, a workload that plays the app
writes through capture → copy → follow → cutover → rollback → follow → a second cutover → a
final rollback, and after every phase where SQLite is the primary, verify says equal."""

from __future__ import annotations

from pathlib import Path

import pytest

from truelabel_db.bench.lifecycle import LifecycleOptions, run_cycle

SEEDS = (1, 2)  # odd seeds run the file in WAL mode, even ones with a rollback journal


@pytest.mark.parametrize("seed", SEEDS)
def test_the_life_cycle_keeps_postgres_equal_to_sqlite_under_the_apps_workload(
        seed: int, tmp_path: Path, pg_url: str, redis_url: str) -> None:
    result = run_cycle(seed, tmp_path, pg_url, redis_url, LifecycleOptions(phase_seconds=1.5))
    failed = [p for p in result.phases if not p.ok]
    assert not failed, f"{failed} — reproduce with: {result.reproduce()}"
    assert result.ok, result.workload
    assert result.workload["committed"] > 100 and result.workload["fk_off"] > 0
    assert {"sqlite", "postgresql"} <= set(result.workload["targets"])  # writes went to both sides
