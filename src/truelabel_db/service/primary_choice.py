"""Which of its configured databases a published primary moves the service to.

The cutover publishes the primary in Redis (``db:primary``) and in a file, without credentials.
Whoever can write to that Redis can publish anything there, so the service never opens what a
published primary names: it only chooses between the databases its operator configured, the
legacy SQLite file (``database`` when it is a file, else ``legacy_path``) and the PostgreSQL URL
(``database`` when it is a URL, else ``postgres_url``, i.e. ``TRUELABEL_TARGET_URL``). A
published primary naming anything else is refused: the caller logs it and keeps serving the
database it has.
"""

from __future__ import annotations

import logging
import os

from truelabel_db.cutover.gate import Primary
from truelabel_db.hotpaths import is_postgres_url
from truelabel_db.postgres import describe
from truelabel_db.service.config import ServiceConfig

log = logging.getLogger("truelabel_db.service")


def configured_postgres(config: ServiceConfig) -> str | None:
    """The PostgreSQL URL the operator gave (it carries the service's own credentials)."""
    return config.database if is_postgres_url(config.database) else config.postgres_url


def configured_legacy(config: ServiceConfig) -> str | None:
    """The legacy SQLite file the operator gave."""
    return config.legacy_path if is_postgres_url(config.database) else config.database


def _server_and_database(locator: str) -> str:
    """``host:port/db`` of a ``user@host:port/db`` locator: the cutover's user is not the service's."""
    return locator.rpartition("@")[2]


def _same_file(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def locator_for(primary: Primary, config: ServiceConfig) -> str | None:
    """What to open for ``primary``: a configured database, or None (refused, and logged)."""
    if primary.kind == "postgresql":
        url = configured_postgres(config)
        if url and _server_and_database(primary.locator) == _server_and_database(describe(url)):
            return url
    elif primary.kind == "sqlite":
        path = configured_legacy(config)
        if path and _same_file(primary.locator, path):
            return path
    log.warning("refused the published primary %s %r (epoch %d): not a database this service was "
                "configured with; serving the current one", primary.kind, primary.locator, primary.epoch)
    return None
