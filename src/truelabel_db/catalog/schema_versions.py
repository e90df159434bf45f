"""Which schema files are applied and which server features were found
(``truelabel_meta.schema_migrations``, ``truelabel_meta.schema_features``)."""

from __future__ import annotations

import psycopg


def record_applied(conn: psycopg.Connection, version: str, checksum: str) -> None:
    conn.execute(
        "INSERT INTO truelabel_meta.schema_migrations (version, checksum) VALUES (%s, %s) "
        "ON CONFLICT (version) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()",
        (version, checksum))


def applied(conn: psycopg.Connection) -> dict[str, str]:
    """version -> checksum of every applied file."""
    return {r[0]: r[1] for r in conn.execute("SELECT version, checksum FROM truelabel_meta.schema_migrations")}


def record_feature(conn: psycopg.Connection, name: str, available: bool, detail: str) -> None:
    conn.execute(
        "INSERT INTO truelabel_meta.schema_features (name, available, detail) "
        "VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE SET available = EXCLUDED.available, "
        "detail = EXCLUDED.detail, checked_at = now()", (name, available, detail))
