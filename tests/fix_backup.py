"""Backups for tests: a key in the environment, a repository, and a database worth backing up."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.fix_db import drop_database, drop_database_soon, make_database
from truelabel_db.backup.keys import KEY_ENV


@pytest.fixture
def backup_key(monkeypatch: pytest.MonkeyPatch) -> bytes:
    """A fresh key, also set in TRUELABEL_BACKUP_KEY for code and subprocesses that read it."""
    key = secrets.token_bytes(32)
    monkeypatch.setenv(KEY_ENV, base64.b64encode(key).decode())
    monkeypatch.delenv("TRUELABEL_BACKUP_KEY_FILE", raising=False)
    return key


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    return tmp_path / "repo"


@pytest.fixture(scope="session")
def app_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The name of a database migrated once per session from a small generated True Label, which
    ``app_db`` clones (a clone costs a fraction of a generate-and-copy)."""
    from truelabel_db.copy import CopyOptions, run_copy
    from truelabel_db.legacy.generator import generate

    folder = tmp_path_factory.mktemp("app-template")
    name = f"tl_template_{secrets.token_hex(6)}"
    url = make_database(name)
    try:
        generate(folder / "legacy.db", 0.01)
        run_copy(folder / "legacy.db", url, CopyOptions(work_dir=folder / "copy", workers=2))
        yield name
    finally:
        drop_database(name)


@pytest.fixture
def app_db(app_template: str) -> Iterator[str]:
    """A database of the test's own in the optimized schema holding a small generated True Label
    (≈3,600 rows), dropped afterwards."""
    name = f"tl_test_{secrets.token_hex(6)}"
    url = make_database(name, template=app_template)
    try:
        yield url
    finally:
        drop_database_soon(name)


def table_digests(url: str) -> dict[str, tuple[int, str]]:
    """Every table's row count and an order-independent digest of its rows' text."""
    with psycopg.connect(url) as conn:
        tables = conn.execute("SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
                              "('pg_catalog', 'information_schema') ORDER BY 1, 2").fetchall()
        out = {}
        for schema, table in tables:
            ident = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            row = conn.execute(sql.SQL("SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') "
                                       "FROM {} t").format(ident)).fetchone()
            out[f"{schema}.{table}"] = (int(row[0]), str(row[1]))
    return out


@pytest.fixture
def scratch_db_name() -> Iterator[str]:
    """A database name that tests may create (by restoring into it); dropped afterwards."""
    name = f"tl_restore_{secrets.token_hex(6)}"
    yield name
    drop_database_soon(name)
