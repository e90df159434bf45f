"""Schema drift is never silent: unknown columns and tables are refused, carried or ignored on
record; a file without Prisma's bookkeeping table, or an older one, is handled, never a crash."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.fix_cli import run_cli
from truelabel_db.analyze import analyze
from truelabel_db.capture import install_capture
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.cutover.reverse import rollback
from truelabel_db.cutover.run import CutoverOptions, cutover
from truelabel_db.errors import ExitCode
from truelabel_db.follow import Follower
from truelabel_db.legacy.generator import generate
from truelabel_db.schema.drift import UnmappedPolicy, UnmappedSchemaError
from truelabel_db.verify import verify

CARRY = UnmappedPolicy.parse(["carry"])


@pytest.fixture
def drifted(tmp_path: Path) -> Path:
    """A file a later Prisma migration changed: ``products.servingSize`` and a ``favorites`` table."""
    path = tmp_path / "drifted.db"
    generate(path, 0.01, seed=41)
    conn = sqlite3.connect(path)
    conn.execute('ALTER TABLE products ADD COLUMN "servingSize" TEXT')
    conn.execute("UPDATE products SET servingSize = '100 g' WHERE rowid % 2 = 0")
    conn.execute("UPDATE products SET servingSize = x'00ff' WHERE rowid % 7 = 0")  # a blob: kept exactly
    conn.execute('CREATE TABLE "favorites" ("id" TEXT NOT NULL PRIMARY KEY, "userId" TEXT NOT NULL, '
                 '"productId" TEXT NOT NULL, "createdAt" DATETIME NOT NULL, "weight" REAL)')
    users = [r[0] for r in conn.execute("SELECT id FROM users LIMIT 5")]
    products = [r[0] for r in conn.execute("SELECT id FROM products LIMIT 5")]
    for i, (user, product) in enumerate(zip(users, products)):
        conn.execute("INSERT INTO favorites VALUES (?, ?, ?, ?, ?)",
                     (str(uuid.uuid4()), user, product, 1_750_000_000_000 + i, i / 3))
    conn.commit()
    conn.close()
    return path


def test_copy_refuses_unmapped_columns_and_tables_naming_each(drifted: Path, pg_url: str, tmp_path: Path) -> None:
    shown = run_cli("copy", "--source", str(drifted), "--target", pg_url, "--work-dir", str(tmp_path / "w"))
    assert shown.code == ExitCode.UNMAPPED_SCHEMA and "Traceback" not in shown.stderr
    assert "products.servingSize" in shown.stderr and "favorites" in shown.stderr
    assert len([line for line in shown.stderr.splitlines() if line.strip()]) == 1
    with pytest.raises(UnmappedSchemaError):
        install_capture(drifted)


def test_carry_keeps_every_value_follows_verifies_and_rolls_back(
        drifted: Path, pg_url: str, redis_url: str, pg: psycopg.Connection, tmp_path: Path) -> None:
    install_capture(drifted, CARRY)
    result = run_copy(drifted, pg_url, CopyOptions(work_dir=tmp_path / "w"))  # the policy capture recorded
    assert result.reconciled and "carried table favorites (as legacy.favorites)" in result.mapping.summary()
    assert pg.execute("SELECT count(*) FROM products WHERE legacy_extra->>'servingSize' = '100 g'").fetchone()[0] > 0
    assert pg.execute("SELECT count(*) FROM legacy.favorites").fetchone()[0] == 5
    assert pg.execute("SELECT count(*) FROM products WHERE legacy_extra->'servingSize'->>'$type' = 'blob'"
                      ).fetchone()[0] > 0  # a blob travels tagged, base64-encoded
    assert pg.execute("SELECT pg_typeof(weight)::text FROM legacy.favorites LIMIT 1").fetchone()[0] == \
        "double precision"
    app = sqlite3.connect(drifted, isolation_level=None)
    key = app.execute("SELECT id FROM products LIMIT 1").fetchone()[0]
    app.execute("UPDATE products SET servingSize = '30 g' WHERE id = ?", (key,))
    favorite = str(uuid.uuid4())
    app.execute("INSERT INTO favorites VALUES (?, 'u', 'p', 1750000000000, 0.5)", (favorite,))
    follower = Follower(drifted, pg_url)
    follower.run(until_caught_up=True)
    follower.close()
    assert pg.execute("SELECT legacy_extra->>'servingSize' FROM products WHERE id = %s", (key,)).fetchone()[0] == "30 g"
    assert verify(drifted, pg_url).equal
    cutover(drifted, pg_url, CutoverOptions(redis_url=redis_url))
    pg.execute("UPDATE products SET legacy_extra = jsonb_set(legacy_extra, '{servingSize}', '\"45 g\"') "
               "WHERE id = %s", (key,))
    pg.execute("UPDATE legacy.favorites SET weight = 9.25 WHERE id = %s", (favorite,))
    rollback(drifted, pg_url, redis_url)
    assert app.execute("SELECT servingSize FROM products WHERE id = ?", (key,)).fetchone()[0] == "45 g"
    assert app.execute("SELECT weight FROM favorites WHERE id = ?", (favorite,)).fetchone()[0] == 9.25
    blob = app.execute("SELECT servingSize FROM products WHERE typeof(servingSize) = 'blob' LIMIT 1").fetchone()
    assert blob is not None and blob[0] == b"\x00\xff"  # never through PostgreSQL's text, so exact


def test_ignore_is_an_explicit_recorded_opt_out(drifted: Path, pg_url: str, tmp_path: Path) -> None:
    shown = run_cli("copy", "--source", str(drifted), "--target", pg_url, "--work-dir", str(tmp_path / "w"),
                    "--unmapped", "ignore:favorites,products.servingSize", "--json")
    assert shown.code == 0, shown.stderr
    drift = json.loads(shown.stdout)["drift"]
    assert drift["ignored"] == ["favorites", "products.servingSize"]
    assert "ignored favorites (--unmapped ignore)" in shown.stderr
    typo = run_cli("copy", "--source", str(drifted), "--target", pg_url, "--work-dir", str(tmp_path / "x"),
                   "--truncate", "--unmapped", "ignore:favourites")
    assert typo.code == ExitCode.UNMAPPED_SCHEMA and "favourites" in typo.stderr


def test_a_file_made_by_prisma_db_push_has_no_migrations_table_and_is_migrated(
        tmp_path: Path, pg_url: str) -> None:
    path = tmp_path / "pushed.db"
    generate(path, 0.01, seed=42)
    sqlite3.connect(path).execute("DROP TABLE _prisma_migrations").connection.commit()
    assert run_cli("analyze", str(path)).code == 0
    install_capture(path)
    result = run_copy(path, pg_url, CopyOptions(work_dir=tmp_path / "w"))
    assert result.reconciled and "_prisma_migrations" not in result.tables
    assert "_prisma_migrations is not in the file (optional)" in result.mapping.summary()


def test_an_older_file_lacking_a_nullable_column_reads_it_as_null_and_a_required_one_is_refused(
        tmp_path: Path, pg_url: str, pg: psycopg.Connection) -> None:
    path = tmp_path / "older.db"
    generate(path, 0.01, seed=43)
    conn = sqlite3.connect(path)
    conn.execute('ALTER TABLE products DROP COLUMN "batchNumber"')
    conn.commit()
    result = run_copy(path, pg_url, CopyOptions(work_dir=tmp_path / "w"))
    assert result.reconciled and pg.execute("SELECT count(*) FROM products WHERE batch_number IS NOT NULL"
                                            ).fetchone()[0] == 0
    conn.execute('ALTER TABLE validations DROP COLUMN "type"')
    conn.commit()
    shown = run_cli("copy", "--source", str(path), "--target", pg_url, "--truncate",
                    "--work-dir", str(tmp_path / "again"))
    assert shown.code == ExitCode.UNMAPPED_SCHEMA and "validations lacks required column(s) type" in shown.stderr
    report = analyze(path)   # analyze says beforehand what copy will refuse, and what it will read as NULL
    assert report.required_missing == ["validations.type"] and report.missing == ["products.batchNumber"]
    assert any(f.severity == "error" and "validations.type" in f.message and "refuse" in f.message
               for f in report.findings)  # before: "info", beside the nullable column


def test_analyze_refuses_a_sqlite_file_holding_none_of_the_apps_tables(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)").connection.commit()
    empty = tmp_path / "empty.db"
    empty.touch()  # a file of 0 bytes is an empty SQLite database
    for path in (other, empty):
        shown = run_cli("analyze", str(path))  # before: a report of "info" findings, exit 0
        assert shown.code == ExitCode.SOURCE and "is not a True Label database" in shown.stderr, shown.stderr
        assert len(shown.stderr.strip().splitlines()) == 1


def test_analyze_reports_a_file_lacking_one_of_the_apps_tables_as_an_error(tmp_path: Path) -> None:
    path = tmp_path / "partial.db"
    generate(path, 0.01, seed=44)
    sqlite3.connect(path).execute("DROP TABLE analytics_events").connection.commit()
    report = analyze(path)
    assert report.required_missing == ["analytics_events"]
    assert any(f.severity == "error" and "analytics_events" in f.message for f in report.findings)
