"""The generator: the real schema, Prisma's encodings, skewed popularity, dirt with known outcomes."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from tests.fix_legacy import REAL_FIXTURE
from truelabel_db.errors import ConfigError
from truelabel_db.legacy.dirt import KINDS
from truelabel_db.legacy.generator import SIZES, generate

REFERENCE = 1_790_812_800_000  # 2026-10-01 UTC


def _digest(path: Path) -> str:
    conn = sqlite3.connect(path)
    h = hashlib.sha256()
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
        for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid'):
            h.update(repr(row).encode())
    return h.hexdigest()


def test_generated_file_has_the_real_schema(tmp_path: Path) -> None:
    if not REAL_FIXTURE.exists():
        pytest.skip("real fixture absent")
    path = tmp_path / "g.db"
    generate(path, 0.01, reference_ms=REFERENCE)
    made = sqlite3.connect(path).execute("SELECT type, name, sql FROM sqlite_master ORDER BY rowid").fetchall()
    real = sqlite3.connect(REAL_FIXTURE).execute("SELECT type, name, sql FROM sqlite_master ORDER BY rowid").fetchall()
    assert made == real


def test_counts_follow_the_scale_and_encodings_are_prismas(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    report = generate(path, 0.05, reference_ms=REFERENCE)
    conn = sqlite3.connect(path)
    for table, size in SIZES.items():
        assert report.rows[table] == conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        assert report.rows[table] == max(1, round(size * 0.05)) or table == "users"
    low, high = REFERENCE - 548 * 86_400_000, REFERENCE
    kinds = conn.execute('SELECT DISTINCT typeof("accessedAt") FROM qr_code_accesses').fetchall()
    assert kinds == [("integer",)]
    assert conn.execute('SELECT min("accessedAt") >= ? AND max("accessedAt") < ? FROM qr_code_accesses',
                        (low, high)).fetchone() == (1,)
    assert conn.execute('SELECT DISTINCT "isActive" FROM laboratories').fetchall() in ([(1,), (0,)], [(0,), (1,)], [(1,)])
    json.loads(conn.execute('SELECT "nutritionalInfo" FROM products LIMIT 1').fetchone()[0])
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)


def test_the_same_seed_gives_the_same_rows(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"
    generate(a, 0.01, seed=3, reference_ms=REFERENCE)
    generate(b, 0.01, seed=3, reference_ms=REFERENCE)
    generate(c, 0.01, seed=4, reference_ms=REFERENCE)
    assert _digest(a) == _digest(b) != _digest(c)


def test_popularity_is_skewed(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    generate(path, 0.2, reference_ms=REFERENCE)
    counts = [n for (n,) in sqlite3.connect(path).execute(
        'SELECT count(*) FROM qr_code_accesses GROUP BY "qrCode" ORDER BY 1 DESC')]
    top = counts[: max(1, len(counts) // 100)]
    assert sum(top) > 0.2 * sum(counts)


def test_dirty_files_hold_every_kind_of_dirt_with_its_outcome(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    report = generate(path, 0.01, dirty=True, reference_ms=REFERENCE)
    assert {d.kind for d in report.dirt} == set(KINDS)
    conn = sqlite3.connect(path)
    for table, keys in report.expected_quarantined().items():
        marks = ", ".join("?" * len(keys))
        found = conn.execute(f'SELECT count(*) FROM "{table}" WHERE id IN ({marks})', list(keys)).fetchone()[0]
        assert found == len(keys)
    written = json.loads(path.with_name(path.name + ".dirt.json").read_text())
    assert len(written["dirt"]) == len(report.dirt)


def test_an_existing_file_is_not_overwritten_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    generate(path, 0.01, reference_ms=REFERENCE)
    with pytest.raises(ConfigError, match="already exists"):
        generate(path, 0.01, reference_ms=REFERENCE)
    generate(path, 0.01, reference_ms=REFERENCE, overwrite=True)
