"""A copy killed with SIGKILL resumes from its snapshot: nothing lost, nothing twice."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.fix_legacy import NOW_MS, insert

ROWS = 60_000


def _busy_legacy(path: Path) -> None:
    conn = sqlite3.connect(path)
    user = insert(conn, "users")
    rows = [(str(uuid.uuid4()), f"QR-{i % 97}", f"10.0.{i % 250}.{i % 200}", "Mozilla/5.0",
             '{"city": "Recife"}', NOW_MS - i * 60_000) for i in range(ROWS)]
    conn.executemany('INSERT INTO qr_code_accesses VALUES (?, ?, ?, ?, ?, ?)', rows)
    for _ in range(50):
        insert(conn, "analytics_events", entityId=str(uuid.uuid4()), userId=user)
    conn.commit()


def _chunks_done(url: str) -> int:
    try:
        with psycopg.connect(url) as conn:
            return int(conn.execute("SELECT count(*) FROM truelabel_meta.copy_chunks "
                                    "WHERE done_at IS NOT NULL").fetchone()[0])
    except psycopg.Error:
        return 0


@pytest.mark.slow
def test_copy_resumes_after_kill_9_without_duplicating_or_losing_rows(
        empty_legacy: Callable[..., Path], pg_url: str, tmp_path: Path) -> None:
    path = empty_legacy()
    _busy_legacy(path)
    argv = [sys.executable, "-m", "truelabel_db", "copy", "--source", str(path), "--target", pg_url,
            "--workers", "1", "--batch-size", "250", "--work-dir", str(tmp_path / "w"), "--json"]
    victim = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _chunks_done(pg_url) < 10 and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert victim.poll() is None, "the copy finished before it could be killed"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    done_before = _chunks_done(pg_url)
    assert 0 < done_before < ROWS / 250

    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    doc = json.loads(rerun.stdout)
    assert doc["resumed"] is True
    assert doc["tables"]["qr_code_accesses"] == {**doc["tables"]["qr_code_accesses"],
                                                 "read": ROWS, "written": ROWS, "quarantined": 0}
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT id) FROM qr_code_access").fetchone() == (ROWS, ROWS)
        assert conn.execute("SELECT count(*) FROM truelabel_meta.quarantine").fetchone()[0] == 0
