"""Databases for the monitor and maintenance tests: one with the schema applied, and a private
cluster that loads pg_stat_statements and pg_cron (libraries only a restart can load)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from truelabel_db.embedded import EmbeddedCluster
from truelabel_db.schema.ddl import apply_schema

PRELOADED = "pg_stat_statements,pg_cron"


@pytest.fixture
def schema_pg(pg: psycopg.Connection) -> psycopg.Connection:
    """An autocommit connection to a fresh database holding the optimized schema."""
    apply_schema(pg)
    return pg


@pytest.fixture(scope="session")
def preload_cluster() -> Iterator[EmbeddedCluster]:
    """A private cluster with pg_stat_statements and pg_cron loaded (pg_cron serves ``postgres``)."""
    folder = Path(tempfile.mkdtemp(prefix="truelabel-preload-"))
    folder.chmod(0o755)
    cluster = EmbeddedCluster(folder / "pg", settings={"shared_preload_libraries": PRELOADED,
                                                       "cron.database_name": "postgres"})
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
