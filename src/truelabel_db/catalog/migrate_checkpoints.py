"""``migrate``'s checkpoints (``truelabel_meta.migrate_checkpoints``): a rerun skips what is here."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb


def is_done(conn: psycopg.Connection, source_path: str, step: str) -> bool:
    return conn.execute("SELECT 1 FROM truelabel_meta.migrate_checkpoints WHERE source_path = %s "
                        "AND step = %s", (source_path, step)).fetchone() is not None


def record(conn: psycopg.Connection, source_path: str, step: str, detail: dict[str, Any]) -> None:
    conn.execute("INSERT INTO truelabel_meta.migrate_checkpoints (source_path, step, detail) "
                 "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING", (source_path, step, Jsonb(detail)))
