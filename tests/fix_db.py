"""A fresh PostgreSQL database per test, on the real server, dropped afterwards."""

from __future__ import annotations

import os
import queue
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import ConnectionPool

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


class Dropper:
    """Drops the tests' databases from a thread of its own while the next tests run.

    PostgreSQL 15 forces a checkpoint at every DROP DATABASE, which flushes every dirty buffer of
    the server: paid in each test's teardown it was seconds on a busy server. Nothing waits for a
    test's database to be gone (names are unique), so the drop happens beside the next test; the
    session waits for the last one and fails if any drop did.
    """

    def __init__(self) -> None:
        self._names: queue.Queue[str | None] = queue.Queue()
        self._failures: list[str] = []
        self._thread = threading.Thread(target=self._run, name="drop-databases", daemon=True)
        self._thread.start()

    def drop(self, name: str) -> None:
        self._names.put(name)

    def close(self) -> None:
        self._names.put(None)
        self._thread.join()
        assert not self._failures, f"databases not dropped: {self._failures}"

    def _run(self) -> None:
        while (name := self._names.get()) is not None:
            try:
                drop_database(name)
            except psycopg.Error as exc:
                self._failures.append(f"{name}: {exc}")


_dropper: Dropper | None = None


def drop_database_soon(name: str) -> None:
    """Drop ``name`` beside the next tests (see :class:`Dropper`); at once outside a test session."""
    if _dropper is None:
        drop_database(name)
    else:
        _dropper.drop(name)


@pytest.fixture(scope="session", autouse=True)
def database_dropper() -> Iterator[Dropper]:
    global _dropper
    _dropper = Dropper()
    try:
        yield _dropper
    finally:
        dropper, _dropper = _dropper, None
        dropper.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a new, empty database that disappears after the test."""
    name = f"tl_test_{uuid.uuid4().hex[:12]}"
    url = make_database(name)
    try:
        yield url
    finally:
        drop_database_soon(name)


@pytest.fixture
def pg(pg_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def pool(pg_url: str) -> Iterator[ConnectionPool]:
    """A pool on a new database holding the bookkeeping schema (the cache's L3 table among it)."""
    from truelabel_db.schema.ddl import apply_schema

    with psycopg.connect(pg_url, autocommit=True) as conn:
        apply_schema(conn, ("pre",))
    with ConnectionPool(pg_url, min_size=1, max_size=4, kwargs={"autocommit": True}) as opened:
        yield opened
