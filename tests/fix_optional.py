"""Optional system packages some tests need: a skip that names the package, or a failure in CI.

`pip install -e '.[test]'` cannot install Debian packages, so on a fresh machine the tests
that need pg_cron, pg_partman or PgBouncer skip, each with the package that would run it.
CI installs them (`.ci/run`) and sets ``TRUELABEL_TEST_REQUIRE_OPTIONAL=1``, which turns each of
those skips into a failure: there, a missing package is a broken install step, not a choice.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest

STRICT_ENV = "TRUELABEL_TEST_REQUIRE_OPTIONAL"


def missing(what: str, package: str) -> NoReturn:
    """Skip (or, where required, fail) the running test because ``package`` is not installed."""
    message = f"{what} is not installed (Debian package {package}; .ci/run installs it)"
    if os.environ.get(STRICT_ENV) == "1":
        pytest.fail(f"{message}, and {STRICT_ENV}=1 requires it")
    pytest.skip(message)


def extension_package(conn: psycopg.Connection, suffix: str) -> str:
    """Debian's package name for an extension built for this server: postgresql-<major>-<suffix>."""
    return f"postgresql-{conn.info.server_version // 10000}-{suffix}"


def extension_available(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = %s)", (name,)).fetchone()
    return bool(row and row[0])


def require_extension(conn: psycopg.Connection, name: str, package_suffix: str) -> None:
    """Go on only if the server can ``CREATE EXTENSION name``."""
    if not extension_available(conn, name):
        missing(f"the {name} extension", extension_package(conn, package_suffix))


@pytest.fixture(scope="session")
def pgbouncer_bin() -> Path:
    """The PgBouncer executable (Debian installs it outside a user's PATH, in /usr/sbin)."""
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        missing("PgBouncer", "pgbouncer")
    return Path(found)
