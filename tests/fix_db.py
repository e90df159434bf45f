"""A fresh PostgreSQL database per test, on the real server, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

ADMIN_URL = os.environ.get("TRUELABEL_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def make_database(name: str, template: str | None = None) -> str:
    """Create a database, empty or as a copy of ``template``; its URL."""
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(statement)
    return psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=name)


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a new, empty database that disappears after the test."""
    name = f"tl_test_{uuid.uuid4().hex[:12]}"
    url = make_database(name)
    try:
        yield url
    finally:
        drop_database(name)


@pytest.fixture
def pg(pg_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn
