"""The cutover's check of changed rows starts where the last verification stopped."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from tests.fix_legacy import NOW_MS, insert
from truelabel_db.capture import install_capture
from truelabel_db.catalog import follow_state
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.follow import Follower
from truelabel_db.legacy.generator import generate
from truelabel_db.verify.compare import verify
from truelabel_db.verify.keys import verify_keys


@pytest.fixture
def followed(tmp_path: Path, pg_url: str) -> Path:
    legacy = tmp_path / "live.db"
    generate(legacy, 0.01, seed=23)
    install_capture(legacy)
    run_copy(legacy, pg_url, CopyOptions(work_dir=tmp_path / "w", workers=2))
    _follow(legacy, pg_url)
    return legacy


def _follow(legacy: Path, pg_url: str) -> None:
    follower = Follower(legacy, pg_url)
    follower.run(until_caught_up=True)
    follower.close()


def _scans(legacy: Path, n: int) -> None:
    app = sqlite3.connect(legacy, isolation_level=None)
    for i in range(n):
        insert(app, "qr_code_accesses", accessedAt=NOW_MS + i)
    app.close()


def test_each_check_reads_only_the_changes_since_the_last_one(followed: Path, pg_url: str,
                                                               pg: psycopg.Connection) -> None:
    _scans(followed, 30)
    _follow(followed, pg_url)
    assert verify_keys(followed, pg_url) == (30, 0)
    verified = follow_state.verified_position(pg, str(followed.resolve()))
    assert verified == follow_state.position(pg, str(followed.resolve()))

    _scans(followed, 5)
    _follow(followed, pg_url)
    assert verify_keys(followed, pg_url) == (5, 0)  # not 35: the changelog was never trimmed
    assert follow_state.verified_position(pg, str(followed.resolve())) == verified + 5


def test_an_equal_full_verify_moves_the_start_of_the_next_check(followed: Path, pg_url: str,
                                                                 pg: psycopg.Connection) -> None:
    _scans(followed, 20)
    _follow(followed, pg_url)
    assert verify(followed, pg_url).equal
    assert verify_keys(followed, pg_url) == (0, 0)


def test_a_row_changed_after_the_last_check_is_still_checked_and_resynced(
        followed: Path, pg_url: str, pg: psycopg.Connection) -> None:
    _scans(followed, 3)
    _follow(followed, pg_url)
    verify_keys(followed, pg_url)
    app = sqlite3.connect(followed, isolation_level=None)
    key = app.execute("SELECT id FROM users ORDER BY id LIMIT 1").fetchone()[0]
    app.execute("UPDATE users SET name = 'Nova' WHERE id = ?", (key,))
    app.close()
    _follow(followed, pg_url)
    pg.execute("UPDATE users SET name = 'damaged behind our back' WHERE id = %s", (key,))
    assert verify_keys(followed, pg_url) == (1, 1)
    assert pg.execute("SELECT name FROM users WHERE id = %s", (key,)).fetchone()[0] == "Nova"
