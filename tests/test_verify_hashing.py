"""The canonical row text that PostgreSQL, SQLite and Python each build for the full verify.

The three must agree exactly on every value they can each spell, or verification falls back to
reading rows in Python (slow, not wrong); where they cannot (a differing value), the row must
still come out by key.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.fix_legacy import insert
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.legacy.generator import generate
from truelabel_db.verify.compare import verify
from truelabel_db.verify.rowtext import UNMATCHABLE, inet_text, jsonb_text

DOCUMENTS = [
    '{"city": "São Paulo", "state": "SP", "country": "BR"}',
    '{"zeta":1,"a":2,"bb":{"y":[1,2,{"k":null}],"x":true}}',
    '{"n": 1.50, "m": 1e2, "z": -0, "w": 1.5E-3, "big": 123456789012345678901234567890, "neg": -2.0}',
    '{"quote": "a\\"b", "slash": "a\\\\b/c", "tab": "a\\tb", "ctl": "\\u0001", "uni": "\\u00e9"}',
    '{"dup": 1, "dup": 2}',
    '[]', '{}', '"text"', '3', 'true', 'null', '[1, "two", [3.0], {"four": false}]',
    '{"ü": 1, "u": 2, "éé": 3, "ab": 4}',
]
ADDRESSES = ["10.0.0.1", "2804:d9bf:0::3b18", "2001:0db8:0000:0000:0000:0000:0000:0001", "::1",
             "::ffff:10.1.2.3", "fe80::1:0:0:0", "2001:DB8::A", "0:0:0:0:0:0:0:0"]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_json_is_spelled_as_postgresqls_jsonb_prints_it(document: str, pg: psycopg.Connection) -> None:
    assert jsonb_text(document.encode()) == pg.execute("SELECT %s::jsonb::text", (document,)).fetchone()[0]


@pytest.mark.parametrize("address", ADDRESSES)
def test_addresses_are_spelled_as_postgresqls_inet_prints_them(address: str, pg: psycopg.Connection) -> None:
    assert inet_text(address) == pg.execute("SELECT abbrev(%s::inet)", (address,)).fetchone()[0]


def test_what_does_not_parse_can_never_match_and_null_stays_null() -> None:
    assert jsonb_text(b'{"a": ') == UNMATCHABLE
    assert inet_text("999.1.2.3:x") == UNMATCHABLE
    assert jsonb_text(None) is None and inet_text(None) is None


@pytest.fixture
def migrated(tmp_path: Path, pg_url: str) -> Path:
    path = tmp_path / "dirty.db"
    generate(path, 0.02, dirty=True, seed=11)
    run_copy(path, pg_url, CopyOptions(work_dir=tmp_path / "w", workers=2))
    return path


def test_a_fresh_copy_of_dirty_data_matches_in_every_key_range_without_reading_rows(
        migrated: Path, pg_url: str) -> None:
    """Repaired values (converted in Python on SQLite's side) hash like PostgreSQL's rows."""
    report = verify(migrated, pg_url)
    assert report.equal
    assert {n: v.mismatched_buckets for n, v in report.tables.items() if v.mismatched_buckets} == {}
    assert sum(v.quarantined for v in report.tables.values()) > 0


def test_a_value_changed_inside_a_json_document_or_a_list_is_named(migrated: Path, pg_url: str,
                                                                    pg: psycopg.Connection) -> None:
    scan = str(pg.execute("UPDATE qr_code_access SET location = location || '{\"city\": \"Outra\"}' "
                          "WHERE id = (SELECT id FROM qr_code_access WHERE location IS NOT NULL "
                          "ORDER BY id LIMIT 1) RETURNING id").fetchone()[0])
    product = str(pg.execute("UPDATE products SET claims = claims || '{extra}'::text[] "
                             "WHERE id = (SELECT id FROM products ORDER BY id LIMIT 1) RETURNING id").fetchone()[0])
    stamp = str(pg.execute("UPDATE analytics_events SET created_at = created_at + interval '1 millisecond' "
                           "WHERE id = (SELECT id FROM analytics_events ORDER BY id LIMIT 1) RETURNING id").fetchone()[0])
    report = verify(migrated, pg_url)
    assert report.tables["qr_code_accesses"].different == [scan]
    assert report.tables["products"].different == [product]
    assert report.tables["analytics_events"].different == [stamp]
    assert {n for n, v in report.tables.items() if not v.equal} == {"qr_code_accesses", "products", "analytics_events"}


def test_null_json_and_addresses_hash_like_postgresqls_nulls(empty_legacy: Callable[..., Path], pg_url: str,
                                                              tmp_path: Path) -> None:
    path = empty_legacy()
    conn = sqlite3.connect(path)
    insert(conn, "qr_code_accesses", location=None, ipAddress=None)
    insert(conn, "qr_code_accesses", ipAddress="2001:db8:0:0::1")
    conn.commit()
    run_copy(path, pg_url, CopyOptions(work_dir=tmp_path / "w", workers=1))
    report = verify(path, pg_url)
    assert report.equal and report.tables["qr_code_accesses"].mismatched_buckets == 0
