"""Opening a legacy SQLite file safely, and taking a consistent snapshot of it.

pgloader reads each table on its own connection with no shared snapshot and trips over
``database is locked`` while the app writes. Here every read goes through a connection with a
busy timeout, and the copy reads a snapshot taken with SQLite's online backup API: one
consistent point in time for all tables and all workers, which a resumed copy reuses.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from truelabel_db.errors import SourceError, SourceLockedError
from truelabel_db.legacy.schema import LegacyTable, read_schema
from truelabel_db.private import create_private_file, private_folder

BUSY_TIMEOUT_ENV = "TRUELABEL_BUSY_TIMEOUT_MS"


def default_busy_timeout_ms() -> int:
    """How long to wait for another process's lock: 5 s, or the environment's choice."""
    return int(os.environ.get(BUSY_TIMEOUT_ENV, "5000"))


@dataclass(frozen=True)
class SourceFingerprint:
    """Enough to notice that a file is not the one a previous run started from."""

    path: str
    size: int
    mtime_ns: int

    def describe(self) -> str:
        return f"{self.path}:{self.size}:{self.mtime_ns}"


def check_is_sqlite(path: Path) -> None:
    """Fail with one clear line unless ``path`` is an existing SQLite 3 file."""
    connect(path).close()


def connect(path: Path, *, read_only: bool = True,
            busy_timeout_ms: int | None = None) -> sqlite3.Connection:
    """A connection that waits for locks instead of failing at once, read-only by default.

    The file is proven SQLite by reading its header through this very connection, never with
    Python's ``open``: closing a descriptor of the database file drops every POSIX lock this
    process holds on it, including those of SQLite connections open on it. In WAL mode that
    shared lock is what tells another process it is not the last connection; without it, that
    process checkpoints and deletes the WAL under our reader, which then reads a stale snapshot
    or "malformed" pages. A file held locked by a writer is a database in use: the connection is
    returned unchecked, and its reads wait out the lock like any other.
    """
    if not path.exists():
        raise SourceError(f"legacy database not found: {path}")
    if not path.is_file():
        raise SourceError(f"legacy database is not a file: {path}")
    if busy_timeout_ms is None:
        busy_timeout_ms = default_busy_timeout_ms()
    uri = path.resolve().as_uri() + ("?mode=ro" if read_only else "?mode=rw")
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout_ms / 1000,
                               check_same_thread=False, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    except sqlite3.Error as exc:
        raise translate_sqlite_error(exc, path) from exc
    try:
        conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return conn  # another process is writing it, so it is a database; reads will wait
        conn.close()
        if "not a database" in str(exc) or "encrypted" in str(exc):
            raise SourceError(f"not a SQLite database: {path}") from exc
        raise translate_sqlite_error(exc, path) from exc
    if 0 < path.stat().st_size < 100:
        conn.close()
        raise SourceError(f"not a SQLite database: {path}")
    return conn


def translate_sqlite_error(exc: sqlite3.Error, path: Path) -> SourceError:
    """Map sqlite3's exceptions to ours, with a message a user can act on."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return SourceLockedError(
            f"legacy database {path} stayed locked by another process: {text}")
    if isinstance(exc, sqlite3.DatabaseError) and (
            "malformed" in text or "not a database" in text or "corrupt" in text):
        return SourceError(f"legacy database {path} is corrupt: {text}")
    return SourceError(f"cannot read legacy database {path}: {text}")


@contextmanager
def reading(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection whose SQLite errors surface as :class:`SourceError`."""
    conn = connect(path)
    try:
        yield conn
    except sqlite3.Error as exc:
        raise translate_sqlite_error(exc, path) from exc
    finally:
        conn.close()


def open_schema(path: Path) -> dict[str, LegacyTable]:
    """Introspect a legacy file, failing cleanly on a corrupt or locked one."""
    with reading(path) as conn:
        return read_schema(conn)


def require_tables(schema: dict[str, LegacyTable], needed: list[str], path: Path) -> None:
    """Refuse a file that is SQLite but not True Label's."""
    missing = [name for name in needed if name not in schema]
    if missing:
        raise SourceError(
            f"{path} is not a True Label database: missing tables {', '.join(missing)}")


def fingerprint(path: Path) -> SourceFingerprint:
    stat = path.stat()
    return SourceFingerprint(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def take_snapshot(source: Path, destination: Path) -> None:
    """Copy ``source`` to ``destination`` at one point in time with SQLite's online backup.

    The backup runs in one step, so it holds a read lock only while pages are copied and a
    concurrent writer simply waits on its busy timeout; the result is checked before use. The
    copy is production data: it is created 0600 (SQLite gives its journal the same mode), and
    the folders made for it 0700.
    """
    private_folder(destination.parent)
    partial = destination.with_name(destination.name + ".partial")
    partial.unlink(missing_ok=True)
    create_private_file(partial)
    try:
        _backup_into(source, partial)
    except BaseException:
        remove_snapshot(partial)  # a part of production data, of no use to anyone
        raise
    os.replace(partial, destination)


def remove_snapshot(path: Path) -> None:
    """Delete a snapshot and what SQLite keeps beside it: a snapshot of a WAL-mode file is in WAL
    mode too, and reading it leaves ``-wal`` and ``-shm`` files that hold its pages."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _backup_into(source: Path, destination: Path) -> None:
    src = connect(source)
    try:
        dst = sqlite3.connect(destination)
        try:
            src.backup(dst)
            result = dst.execute("PRAGMA quick_check").fetchone()[0]
            if result != "ok":
                raise SourceError(f"legacy database {source} is corrupt: {result}")
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise translate_sqlite_error(exc, source) from exc
    finally:
        src.close()


def require_rollback_journal(path: Path) -> None:
    """In-place reading is consistent only where a reader's lock holds writers off."""
    with reading(path) as conn:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    if str(mode).lower() == "wal":
        raise SourceError(f"{path} is in WAL mode, where readers do not hold writers off: "
                          "copy it through a snapshot (leave out --in-place)")


@contextmanager
def frozen(path: Path) -> Iterator[None]:
    """Hold a SHARED lock on a rollback-journal file: no writer commits until we let go.

    Every reader of the file then sees the same state, which is what makes reading in place
    a consistent snapshot, at the price of blocking the app's writes meanwhile.
    """
    conn = connect(path)
    try:
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        yield
    except sqlite3.Error as exc:
        raise translate_sqlite_error(exc, path) from exc
    finally:
        conn.close()
