"""The initial copy: every row in PostgreSQL or in quarantine, with the right types."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from tests.fix_legacy import insert
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.errors import SourceError, TargetNotEmptyError
from truelabel_db.legacy.source import frozen
from truelabel_db.quarantine import fix_value, list_records, redrive


def copy(source: Path, url: str, tmp_path: Path, **options: object) -> object:
    return run_copy(source, url, CopyOptions(work_dir=tmp_path / "work", **options))  # type: ignore[arg-type]


def test_the_real_database_migrates_every_row_with_real_types(real_legacy: Path, pg_url: str,
                                                              pg: psycopg.Connection, tmp_path: Path) -> None:
    result = copy(real_legacy, pg_url, tmp_path)
    assert result.reconciled and result.totals.quarantined == 0
    legacy = sqlite3.connect(real_legacy)
    for name, summary in result.tables.items():
        assert summary.read == summary.written == legacy.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
    created = pg.execute("SELECT min(created_at), max(created_at) FROM users").fetchone()
    assert created[0].year == 2025 and created[1].year == 2025
    roles = {r[0] for r in pg.execute("SELECT role::text FROM users")}
    assert roles == {"ADMIN", "BRAND", "LABORATORY"}
    claims, info = pg.execute("SELECT claims, nutritional_info FROM products WHERE sku = 'IOG001'").fetchone()
    assert claims == ["Fonte de Proteína", "Sem Lactose"] and info["calorias"] == 120
    types = dict(pg.execute("SELECT column_name, data_type FROM information_schema.columns "
                            "WHERE table_name = 'products'").fetchall())
    assert types["id"] == "uuid" and types["created_at"] == "timestamp with time zone"
    assert types["nutritional_info"] == "jsonb" and types["claims"] == "ARRAY"
    assert pg.execute("SELECT count(*) FROM brand_dashboard_stats").fetchone()[0] == 1


def test_copy_quarantines_rows_it_cannot_convert_and_repairs_what_is_certain(
        empty_legacy: Callable[..., Path], pg_url: str, pg: psycopg.Connection, tmp_path: Path) -> None:
    path = empty_legacy()
    conn = sqlite3.connect(path)
    brand = insert(conn, "users", role="BRAND")
    insert(conn, "users", role="lab", createdAt="2025-01-02 03:04:05")      # repaired twice
    bad_user = insert(conn, "users", role="SUPERUSER")                     # quarantined
    insert(conn, "products", userId=brand, status="validated")             # repaired
    bad_json = insert(conn, "products", userId=brand, nutritionalInfo='{"porcao": ')
    orphan = insert(conn, "products", userId="0b5f1a9e-0000-4000-8000-000000000000")
    nul = insert(conn, "qr_code_accesses", userAgent="Mozilla\x00")
    bad_ip = insert(conn, "qr_code_accesses", ipAddress="999.1.2.3")
    insert(conn, "qr_code_accesses", accessedAt=1750415226)                 # seconds: repaired
    conn.commit()

    result = copy(path, pg_url, tmp_path)

    assert result.reconciled
    assert result.tables["users"].written == 2 and result.tables["users"].quarantined == 1
    assert result.tables["products"].quarantined == 2
    assert result.tables["qr_code_accesses"].quarantined == 2
    assert result.totals.repaired == 3
    records = {r.legacy_key: r for r in list_records(pg)}
    assert set(records) == {bad_user, bad_json, orphan, nul, bad_ip}
    assert records[orphan].stage == "orphan"
    assert "malformed JSON" in records[bad_json].reasons[0]["reason"]
    assert records[nul].original["userAgent"]["$base64"]
    when = pg.execute("SELECT accessed_at FROM qr_code_access WHERE ip_address IS NULL "
                      "OR accessed_at < '2025-06-21'").fetchall()
    assert datetime(2025, 6, 20, 10, 27, 6, tzinfo=timezone.utc) in {w[0] for w in when}


def test_quarantined_rows_can_be_fixed_and_re_driven(empty_legacy: Callable[..., Path], pg_url: str,
                                                      pg: psycopg.Connection, tmp_path: Path) -> None:
    path = empty_legacy()
    conn = sqlite3.connect(path)
    bad = insert(conn, "users", role="SUPERUSER")
    conn.commit()
    copy(path, pg_url, tmp_path)
    [record] = list_records(pg)
    assert redrive(pg).still_failing == {record.id: "role: 'SUPERUSER' is not a user_role"}
    fix_value(pg, record.id, "role", "ADMIN")
    assert redrive(pg).inserted == [record.id]
    assert pg.execute("SELECT role::text FROM users WHERE id = %s", (bad,)).fetchone()[0] == "ADMIN"
    assert list_records(pg) == []


def test_orphans_can_be_kept_under_a_not_valid_foreign_key(empty_legacy: Callable[..., Path], pg_url: str,
                                                           pg: psycopg.Connection, tmp_path: Path) -> None:
    path = empty_legacy()
    conn = sqlite3.connect(path)
    insert(conn, "products", userId="0b5f1a9e-0000-4000-8000-000000000000")
    conn.commit()
    result = copy(path, pg_url, tmp_path, orphan_policy="keep")
    assert result.tables["products"].written == 1 and result.tables["products"].kept_orphans == 1
    valid = pg.execute("SELECT convalidated FROM pg_constraint WHERE conname = 'products_user_id_fkey'").fetchone()
    assert valid == (False,)


def test_a_non_empty_target_is_refused_unless_told_to_truncate(real_legacy: Path, pg_url: str,
                                                               tmp_path: Path) -> None:
    copy(real_legacy, pg_url, tmp_path)
    with pytest.raises(TargetNotEmptyError):
        copy(real_legacy, pg_url, tmp_path)
    again = copy(real_legacy, pg_url, tmp_path, truncate=True)
    assert again.reconciled and again.totals.written == again.totals.read


def test_duplicate_keys_after_normalisation_are_quarantined(empty_legacy: Callable[..., Path], pg_url: str,
                                                            pg: psycopg.Connection, tmp_path: Path) -> None:
    path = empty_legacy()
    conn = sqlite3.connect(path)
    same = "6f1c2d3e-4a5b-4c6d-8e7f-901234567890"
    insert(conn, "users", id=same)
    insert(conn, "users", id=same.upper())
    conn.commit()
    result = copy(path, pg_url, tmp_path)
    assert result.reconciled
    assert (result.tables["users"].written, result.tables["users"].quarantined) == (1, 1)
    [record] = list_records(pg)
    assert record.stage == "duplicate"


def test_a_dirty_generated_database_reconciles_exactly(tmp_path: Path, pg_url: str,
                                                       pg: psycopg.Connection) -> None:
    from truelabel_db.legacy.generator import generate

    legacy = tmp_path / "dirty.db"
    report = generate(legacy, 0.05, dirty=True, seed=11)
    result = copy(legacy, pg_url, tmp_path, workers=3, batch_size=700)

    assert result.reconciled
    expected = report.expected_quarantined()
    for table, summary in result.tables.items():
        assert summary.read == report.rows.get(table, 1)
        assert summary.quarantined == len(expected.get(table, ())), table
        assert summary.repaired == report.expected_repaired().get(table, 0), table
    found: dict[str, set[str]] = {}
    for record in list_records(pg, limit=100_000):
        found.setdefault(record.legacy_table, set()).add(str(record.legacy_key))
    assert found == expected


def test_in_place_copy_reads_the_file_itself_and_leaves_it(real_legacy: Path, pg_url: str,
                                                           tmp_path: Path) -> None:
    result = copy(real_legacy, pg_url, tmp_path, in_place=True)
    assert result.reconciled and result.totals.written == 8
    assert real_legacy.exists() and not (tmp_path / "work").exists()


def test_in_place_is_refused_for_a_wal_file(real_legacy: Path, pg_url: str, tmp_path: Path) -> None:
    sqlite3.connect(real_legacy).execute("PRAGMA journal_mode = WAL").fetchone()
    with pytest.raises(SourceError, match="WAL mode"):
        copy(real_legacy, pg_url, tmp_path, in_place=True)


def test_an_in_place_copy_holds_writers_off_so_its_snapshot_is_consistent(real_legacy: Path) -> None:
    writer = sqlite3.connect(real_legacy, timeout=0.1)
    with frozen(real_legacy):
        writer.execute("UPDATE users SET name = 'x'")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            writer.commit()
    writer.rollback()
    writer.execute("UPDATE users SET name = 'x'")
    writer.commit()
