"""The legacy schema is the real app's, read from its database, never retyped."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from truelabel_db.legacy.schema import create_legacy_schema, read_schema


def _master(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    return conn.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                        "ORDER BY rowid").fetchall()


def test_packaged_ddl_is_exactly_the_real_databases_schema(real_legacy: Path) -> None:
    real = sqlite3.connect(real_legacy)
    made = sqlite3.connect(":memory:")
    create_legacy_schema(made)
    assert _master(made) == _master(real)


def test_introspection_finds_tables_keys_and_foreign_keys(real_legacy: Path) -> None:
    schema = read_schema(sqlite3.connect(real_legacy))
    assert set(schema) >= {"users", "products", "qr_code_accesses", "analytics_events"}
    products = schema["products"]
    assert products.primary_key == "id"
    assert [(fk.column, fk.parent_table) for fk in products.foreign_keys] == [("userId", "users")]
    assert products.is_indexed("sku") and not products.is_indexed("userId")
