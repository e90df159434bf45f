"""Databases for the monitor and maintenance tests: one with the schema applied, and a private
cluster that loads pg_stat_statements and, where it is installed, pg_cron (libraries only a
restart can load)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.fix_optional import extension_available, extension_package, missing
from truelabel_db.embedded import EmbeddedCluster, scratch_cluster_dir
from truelabel_db.schema.ddl import apply_schema

ALWAYS_PRELOADED = "pg_stat_statements"   # in PostgreSQL's own contrib: every server package has it


@pytest.fixture
def schema_pg(pg: psycopg.Connection) -> psycopg.Connection:
    """An autocommit connection to a fresh database holding the optimized schema."""
    apply_schema(pg)
    return pg


@pytest.fixture(scope="session")
def preload_cluster(server_binaries: Path) -> Iterator[EmbeddedCluster]:
    """One private cluster for the session with pg_stat_statements loaded, and pg_cron too when its
    package is installed (pg_cron serves the ``postgres`` database). Tests create their own
    databases in it (``create_database``)."""
    with scratch_cluster_dir("preload-") as folder:
        cluster = EmbeddedCluster(folder / "pg", settings={"shared_preload_libraries": ALWAYS_PRELOADED})
        try:
            cluster.start()
            with psycopg.connect(cluster.url) as conn:
                has_cron = extension_available(conn, "pg_cron")
            if has_cron:
                cluster.restart({"shared_preload_libraries": f"{ALWAYS_PRELOADED},pg_cron",
                                 "cron.database_name": "postgres"})
            yield cluster
        finally:
            cluster.stop()


@pytest.fixture
def cron_cluster(preload_cluster: EmbeddedCluster) -> EmbeddedCluster:
    """The preloaded cluster, for a test that needs pg_cron (skipped, naming the package, without it)."""
    if "pg_cron" not in preload_cluster.settings["shared_preload_libraries"]:
        with psycopg.connect(preload_cluster.url) as conn:
            missing("the pg_cron extension", extension_package(conn, "cron"))
    return preload_cluster
