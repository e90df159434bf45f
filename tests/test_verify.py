"""``verify`` proves equality, names exactly the rows that differ, and repairs exactly them."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.fix_cli import run_cli
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.legacy.generator import generate
from truelabel_db.verify.compare import verify


@pytest.fixture
def migrated(tmp_path: Path, pg_url: str) -> Path:
    path = tmp_path / "dirty.db"
    generate(path, 0.02, dirty=True, seed=9)
    run_copy(path, pg_url, CopyOptions(work_dir=tmp_path / "w", workers=2))
    return path


def test_a_fresh_copy_verifies_equal_with_its_quarantine_accounted_for(migrated: Path, pg_url: str) -> None:
    report = verify(migrated, pg_url)
    assert report.equal
    assert sum(v.quarantined for v in report.tables.values()) > 0
    qr = report.tables["qr_code_accesses"]
    assert qr.source_rows == qr.target_rows + qr.quarantined


@pytest.mark.slow
def test_corrupted_rows_are_named_and_repair_fixes_exactly_them(migrated: Path, pg_url: str,
                                                                 pg: psycopg.Connection) -> None:
    changed = [str(r[0]) for r in pg.execute("SELECT id FROM users ORDER BY id LIMIT 2")]
    pg.execute("UPDATE users SET name = 'corrompido' WHERE id = ANY(%s::uuid[])", (changed,))
    gone = str(pg.execute("DELETE FROM qr_code_access WHERE id = (SELECT id FROM qr_code_access ORDER BY id LIMIT 1) "
                          "RETURNING id").fetchone()[0])
    extra = str(pg.execute("INSERT INTO laboratories (name, accreditation, email) VALUES "
                           "('Fantasma', 'x', 'fantasma@example.com') RETURNING id").fetchone()[0])

    report = verify(migrated, pg_url)
    assert not report.equal
    assert report.tables["users"].different == sorted(changed)
    assert report.tables["qr_code_accesses"].missing_in_target == [gone]
    assert report.tables["laboratories"].extra_in_target == [extra]
    assert all(v.equal for name, v in report.tables.items()
               if name not in ("users", "qr_code_accesses", "laboratories"))

    repaired = verify(migrated, pg_url, repair=True)
    assert repaired.equal
    assert {n: v.repaired for n, v in repaired.tables.items() if v.repaired} == {
        "users": 2, "qr_code_accesses": 1, "laboratories": 1}
    assert verify(migrated, pg_url).equal


def test_the_cli_fails_on_a_difference_and_passes_after_repair(migrated: Path, pg_url: str,
                                                               pg: psycopg.Connection) -> None:
    pg.execute("DELETE FROM validations WHERE id = (SELECT id FROM validations ORDER BY id LIMIT 1)")
    failed = run_cli("verify", "--source", str(migrated), "--target", pg_url)
    assert failed.code == 7 and "run with --repair" in failed.stderr
    fixed = run_cli("verify", "--source", str(migrated), "--target", pg_url, "--repair", "--json")
    assert fixed.code == 0, fixed.stderr
    assert '"equal": true' in fixed.stdout
