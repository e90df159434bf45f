"""Values PostgreSQL refuses are found in one pass, not by re-sending a chunk row by row."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fix_legacy import insert
from truelabel_db.catalog.quarantine import list_records
from truelabel_db.copy import CopyOptions, run_copy, worker


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every COPY of SQLite-formatted rows the copy sends: (table, records), real COPYs counted."""
    seen: list[tuple[str, int]] = []
    real = worker.copy_payload

    def counted(cur: Any, table: Any, payload: bytes, *, csv: bool = False) -> None:
        if csv and payload:
            seen.append((table.legacy, payload.count(b"\n")))
        real(cur, table, payload, csv=csv)
    monkeypatch.setattr(worker, "copy_payload", counted)
    return seen


def test_many_refused_values_of_one_kind_cost_one_more_copy_of_their_chunk(
        empty_legacy: Callable[..., Path], pg_url: str, pg: psycopg.Connection, tmp_path: Path,
        sent: list[tuple[str, int]]) -> None:
    path = empty_legacy()
    conn = sqlite3.connect(path)
    rng = random.Random(3)
    bad = set()
    for i in range(600):
        kind = rng.random()
        if kind < 0.05:
            bad.add(insert(conn, "qr_code_accesses", ipAddress=rng.choice(("999.1.2.3", "unknown", "10.0.0"))))
        elif kind < 0.10:
            bad.add(insert(conn, "qr_code_accesses", userAgent=f"Mozilla\x00{i}"))
        else:
            insert(conn, "qr_code_accesses")
    conn.commit()

    result = run_copy(path, pg_url, CopyOptions(work_dir=tmp_path / "w", workers=1, batch_size=300))

    assert result.reconciled and result.tables["qr_code_accesses"].quarantined == len(bad)
    assert {r.legacy_key for r in list_records(pg)} == bad
    # two chunks of 300: the first is refused for an address, then for a NUL byte, then loaded;
    # the second knows both kinds beforehand and is sent once. Four COPYs, never one per bad row.
    assert len([n for table, n in sent if table == "qr_code_accesses"]) == 4, sent


def test_a_refusal_that_names_no_column_is_traced_to_its_row(
        empty_legacy: Callable[..., Path], pg_url: str, pg: psycopg.Connection, tmp_path: Path) -> None:
    path = empty_legacy()
    conn = sqlite3.connect(path)
    for _ in range(50):
        insert(conn, "qr_code_accesses")
    broken = insert(conn, "qr_code_accesses")
    conn.execute("UPDATE qr_code_accesses SET userAgent = CAST(x'4d6f7a696c6c61ff' AS TEXT) WHERE id = ?", (broken,))
    conn.commit()

    result = run_copy(path, pg_url, CopyOptions(work_dir=tmp_path / "w", workers=1))

    assert result.reconciled and result.tables["qr_code_accesses"].quarantined == 1
    assert [r.legacy_key for r in list_records(pg)] == [broken]
