"""Running PostgreSQL's client tools with no secret on their command line.

``pg_dump "postgresql://u:secret@h/db"`` shows the password to every user of the machine through
``ps``. The URL is split here: the password travels in ``PGPASSWORD`` (or the user's
``PGPASSFILE``), the rest as a conninfo string. The tools come from the newest PostgreSQL found
on the machine, since ``pg_dump`` must be at least as new as the server.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from truelabel_db.backup.errors import BackupError
from truelabel_db.hooks import scrubbed_environment
from truelabel_db.postgres import redact


@dataclass(frozen=True)
class ToolTarget:
    """A database as the client tools take it: a password-free conninfo and an environment."""

    conninfo: str
    env: dict[str, str]


def tool_target(url: str) -> ToolTarget:
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise BackupError(f"invalid database URL: {redact(str(exc).splitlines()[0])}") from exc
    env = tool_environment()
    password = params.pop("password", None)
    if password:
        env["PGPASSWORD"] = str(password)
    return ToolTarget(make_conninfo(**{k: str(v) for k, v in params.items()}), env)


def tool_environment() -> dict[str, str]:
    """Our environment minus its secrets (the backup key, other passwords, cloud credentials):
    a client tool needs none of them. ``PGPASSWORD`` stays, as libpq reads it."""
    return scrubbed_environment(keep=("PGPASSWORD",))


def binary(name: str) -> str:
    """The newest installed ``name`` (``pg_dump``, ``pg_restore``, ``pg_basebackup``...)."""
    from truelabel_db.embedded import find_server_binaries
    from truelabel_db.errors import EmbeddedClusterError

    try:
        candidate = find_server_binaries() / name
        if candidate.is_file():
            return str(candidate)
    except EmbeddedClusterError:
        pass
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install PostgreSQL's client tools (Debian: postgresql-client-15)")
    return found


def run_tool(name: str, args: Sequence[str], *, env: dict[str, str] | None = None,
             cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool to completion; a failure is one :class:`BackupError` line with its last error."""
    result = subprocess.run([binary(name), *args], capture_output=True, text=True, env=env or tool_environment(),
                            cwd=str(cwd) if cwd else None, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise BackupError(f"{name} failed (exit {result.returncode}): {last_error(result.stderr or result.stdout)}")
    return result


def last_error(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()]
    return redact((errors or lines or ["no output"])[-1])[:300]
