"""Entry point: builds the command tree and turns our errors into one line and an exit code."""

from __future__ import annotations

import os
import sqlite3
import sys

import psycopg
import typer
from rich.markup import escape

from truelabel_db.cli import (
    backup_cmd,
    bench_cmd,
    cache_cmd,
    capture_cmd,
    copy_cmd,
    cutover_cmd,
    dr_cmd,
    follow_cmd,
    keys_cmd,
    legacy_cmd,
    maintain_cmd,
    migrate_cmd,
    monitor_cmd,
    pitr_cmd,
    quarantine_cmd,
    replica_cmd,
    schema_cmd,
    serve_cmd,
    soak_cmd,
    status_cmd,
    verify_cmd,
    workload_cmd,
)
from truelabel_db.cli.output import err
from truelabel_db.errors import ExitCode, TrueLabelError

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                  help="Move True Label from SQLite to an optimized PostgreSQL, and keep it healthy.")
legacy_cmd.register(app)
copy_cmd.register(app)
capture_cmd.register(app)
follow_cmd.register(app)
verify_cmd.register(app)
cutover_cmd.register(app)
migrate_cmd.register(app)
schema_cmd.register(app)
quarantine_cmd.register(app)
bench_cmd.register(app)
soak_cmd.register(bench_cmd.bench_app)
status_cmd.register(app)
backup_cmd.register(app)
pitr_cmd.register(app)
dr_cmd.register(app)
serve_cmd.register(app)
keys_cmd.register(app)
cache_cmd.register(app)
monitor_cmd.register(app)
maintain_cmd.register(app)
replica_cmd.register(app)
workload_cmd.register(app)

CATALOG = "truelabel_meta"
# A database no copy went into (a wrong --target), or one an older version set up: the catalog's
# tables, functions or schema are missing, and the message names which.
CATALOG_MISSING = (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction, psycopg.errors.InvalidSchemaName)


def main() -> None:
    """Run the CLI; any failure is one line on stderr and a non-zero exit, never a traceback."""
    try:
        app()
    except TrueLabelError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted; run the same command again to resume", ExitCode.INTERRUPTED)
    except psycopg.OperationalError as exc:
        _fail(f"lost the PostgreSQL connection: {_line(exc)}; run the same command again to resume", ExitCode.TARGET)
    except sqlite3.Error as exc:
        _fail(f"SQLite error: {_line(exc)}", ExitCode.SOURCE)
    except OSError as exc:
        _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), ExitCode.FAILED)
    except CATALOG_MISSING as exc:
        if CATALOG not in str(exc) or os.environ.get("TRUELABEL_DEBUG"):
            _internal(exc)
        _fail(f"the target database lacks truelabel-db's catalog ({_line(exc)}): if no copy was made into it, "
              "check --target; if an older version migrated it, run `truelabel-db schema apply`", ExitCode.TARGET)
    except Exception as exc:  # a bug: still one line, the traceback on request
        _internal(exc)


def _internal(exc: Exception) -> None:
    if os.environ.get("TRUELABEL_DEBUG"):
        raise exc
    _fail(f"internal error ({type(exc).__name__}): {_line(exc)} "
          "(set TRUELABEL_DEBUG=1 for the traceback)", ExitCode.INTERNAL)


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _fail(message: str, code: int) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)   # a message's [brackets] are text
    sys.exit(code)
