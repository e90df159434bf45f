"""``analyze`` finds each kind of legacy problem, and only the ones that are there."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fix_legacy import insert
from truelabel_db.analyze import analyze
from truelabel_db.errors import SourceError


def _column(report, table: str, column: str):  # type: ignore[no-untyped-def]
    return next(c for c in report.columns if (c.table, c.column) == (table, column))


def test_the_real_database_is_clean_prisma(real_legacy: Path) -> None:
    report = analyze(real_legacy)
    created = _column(report, "users", "createdAt")
    assert created.encodings == {"epoch_ms": 3}
    assert all(not c.refused for c in report.columns)
    role = _column(report, "users", "role")
    assert set(role.distinct_values or {}) == {"ADMIN", "BRAND", "LAB"} and role.outside_enum == []
    assert "products.nutritionalInfo" in report.json_in_text and "products.claims" in report.lists_in_text
    assert any(m.table == "products" and m.columns == ("userId",) for m in report.missing_indexes)
    json.dumps(report.to_dict())


def test_each_kind_of_dirt_is_found_where_it_is(empty_legacy: Callable[..., Path]) -> None:
    path = empty_legacy()
    conn = sqlite3.connect(path)
    brand = insert(conn, "users", createdAt="2025-01-02 03:04:05")
    insert(conn, "users", createdAt=1750415226, role="pending")
    insert(conn, "products", userId=brand, status="validated", nutritionalInfo='{"porcao": ')
    orphan = insert(conn, "products", userId="0b5f1a9e-0000-4000-8000-000000000000")
    insert(conn, "qr_code_accesses", userAgent="Mozilla\x00", ipAddress="999.1.2.3")
    conn.commit()

    report = analyze(path)

    assert _column(report, "users", "createdAt").encodings == {"sqlite_text": 1, "epoch_s": 1}
    assert _column(report, "users", "role").outside_enum == ["pending"]
    status = _column(report, "products", "status")
    assert sum(status.repaired.values()) == 1
    info = _column(report, "products", "nutritionalInfo")
    assert info.encodings.get("json_does_not_parse") == 1 and sum(info.refused.values()) == 1
    assert sum(_column(report, "qr_code_accesses", "userAgent").refused.values()) == 1
    assert _column(report, "qr_code_accesses", "userAgent").encodings.get("nul_byte") == 1
    assert sum(_column(report, "qr_code_accesses", "ipAddress").refused.values()) == 1
    [products_fk] = [o for o in report.orphans if o.table == "products"]
    assert products_fk.rows == 1 and products_fk.samples == [orphan]
    assert any(f.severity == "error" and "point to no users" in f.message for f in report.findings)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(b"plain text, not a database")
    with pytest.raises(SourceError, match="not a SQLite database"):
        analyze(path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not found"):
        analyze(tmp_path / "absent.db")


def test_a_corrupt_file_is_refused(real_legacy: Path) -> None:
    data = bytearray(real_legacy.read_bytes())
    data[4096 * 2:4096 * 6] = b"\xff" * (4096 * 4)
    real_legacy.write_bytes(bytes(data))
    with pytest.raises(SourceError, match="corrupt"):
        analyze(real_legacy)


def test_unknown_tables_are_reported_as_unmapped(empty_legacy: Callable[..., Path]) -> None:
    path = empty_legacy()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE sessions (id TEXT PRIMARY KEY, token TEXT)")
    conn.commit()
    assert "sessions" in analyze(path).unmapped
