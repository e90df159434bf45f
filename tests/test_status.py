"""``status``: an operator sees where the migration stands, and what needs acting on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.fix_cli import run_cli
from tests.fix_legacy import insert
from truelabel_db.capture import install_capture
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.cutover.gate import Gate, connect_redis
from truelabel_db.follow import Follower
from truelabel_db.legacy.generator import generate
from truelabel_db.status import collect, sparkline


@pytest.fixture
def copied(tmp_path: Path, pg_url: str) -> Path:
    legacy = tmp_path / "live.db"
    generate(legacy, 0.01, seed=51)
    install_capture(legacy)
    run_copy(legacy, pg_url, CopyOptions(work_dir=tmp_path / "w"))
    return legacy


def test_status_shows_the_copy_the_follower_and_what_waits(copied: Path, pg_url: str, redis_url: str) -> None:
    now = collect(copied, pg_url, redis_url)
    assert now.copy_status == "done" and all(t["chunks_done"] == t["chunks"] for t in now.copy_tables)
    assert now.primary == "sqlite" and now.gate is None
    assert any("no follower has run" in a for a in now.alerts)
    app = sqlite3.connect(copied)
    insert(app, "users", name="depois")
    app.commit()
    follower = Follower(copied, pg_url)
    follower.run(until_caught_up=True)
    follower.close()
    now = collect(copied, pg_url, redis_url)
    assert now.follower is not None and now.follower["lag_rows"] == 0 and not now.alerts
    Gate(connect_redis(redis_url)).publish_primary("postgresql", "elsewhere")
    assert any("Redis publishes postgresql" in a for a in collect(copied, pg_url, redis_url).alerts)


def test_status_watch_redraws_live_and_json_is_for_machines(copied: Path, pg_url: str) -> None:
    shown = run_cli("status", "--source", str(copied), "--target", pg_url, "--watch", "--frames", "2",
                    "--interval", "0.05")
    assert shown.code == 0, shown.stderr
    assert "copy run" in shown.stderr and "alerts" in shown.stderr
    once = run_cli("status", "--source", str(copied), "--target", pg_url, "--json")
    assert once.code == 0 and '"copy_status": "done"' in once.stdout


def test_a_sparkline_scales_to_its_largest_value() -> None:
    assert sparkline([0, 50, 100]) == "▁▄█"
    assert sparkline([]) == ""
