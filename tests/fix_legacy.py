"""Legacy SQLite files for tests: the real fixture, and small hand-made ones."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from truelabel_db.legacy.schema import create_legacy_schema

# The real app's development database, kept beside the tests (a verbatim copy of the shared
# fixture) so that every legacy-side test starts from the exact Prisma schema and encodings.
REAL_FIXTURE = Path(__file__).resolve().parent / "data" / "truelabel-dev.db"


@pytest.fixture
def real_legacy(tmp_path: Path) -> Path:
    """A private copy of the real app's development database."""
    if not REAL_FIXTURE.exists():
        pytest.skip("the real truelabel-dev.db fixture is not beside this checkout")
    path = tmp_path / "truelabel-dev.db"
    shutil.copyfile(REAL_FIXTURE, path)
    path.chmod(0o644)
    return path


@pytest.fixture
def empty_legacy(tmp_path: Path) -> Callable[..., Path]:
    """A factory: a legacy file with the Prisma schema and the rows a test inserts."""
    def make(name: str = "legacy.db") -> Path:
        path = tmp_path / name
        conn = sqlite3.connect(path)
        create_legacy_schema(conn)
        conn.commit()
        conn.close()
        return path
    return make


NOW_MS = 1_750_415_226_464


def new_id() -> str:
    import uuid

    return str(uuid.uuid4())


DEFAULTS: dict[str, dict[str, object]] = {
    "users": {"email": None, "password": "x", "name": "Fulano", "role": "BRAND",
              "createdAt": NOW_MS, "updatedAt": NOW_MS},
    "laboratories": {"name": "Lab", "accreditation": "ISO 17025", "email": None, "isActive": 1,
                     "createdAt": NOW_MS, "updatedAt": NOW_MS},
    "products": {"name": "Iogurte", "brand": "Marca", "category": "Alimentos", "sku": None,
                 "nutritionalInfo": '{"porcao": "100g"}', "claims": "Sem Glúten, Vegano",
                 "qrCode": None, "status": "PENDING", "createdAt": NOW_MS, "updatedAt": NOW_MS},
    "validations": {"status": "PENDING", "type": "MANUAL", "createdAt": NOW_MS, "updatedAt": NOW_MS},
    "qr_code_accesses": {"qrCode": "QR-1", "ipAddress": "200.1.2.3", "userAgent": "Mozilla",
                         "location": '{"city": "São Paulo"}', "accessedAt": NOW_MS},
    "analytics_events": {"eventType": "product_view", "entityType": "product",
                         "data": "{}", "timestamp": NOW_MS},
}


def insert(conn: sqlite3.Connection, table: str, **values: object) -> str:
    """Insert one legacy row with sensible defaults; returns its id."""
    row: dict[str, object] = {"id": new_id(), **DEFAULTS.get(table, {}), **values}
    for unique in ("email", "sku", "qrCode"):
        if unique in row and row[unique] is None and unique not in values:
            row[unique] = f"{unique}-{row['id']}"
    columns = ", ".join(f'"{c}"' for c in row)
    conn.execute(f'INSERT INTO "{table}" ({columns}) VALUES ({", ".join("?" * len(row))})',
                 list(row.values()))
    return str(row["id"])
