"""Entry point: builds the command tree and turns our errors into one line and an exit code."""

from __future__ import annotations

import os
import sqlite3
import sys
from typing import NoReturn

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


def _usage_error_types() -> tuple[tuple[type[Exception], ...], tuple[type[BaseException], ...]]:
    """Click's usage errors and aborts, whichever Click this Typer uses: Typer 0.29 carries its own
    copy, whose exceptions derive from ``typer.exceptions.TyperException``, and no longer needs
    Click installed; earlier ones use Click's. Neither is imported unless it is there."""
    errors: list[type[Exception]] = []
    aborts: list[type[BaseException]] = [typer.Abort]
    try:
        from typer.exceptions import TyperException
        errors.append(TyperException)
    except ImportError:  # a Typer that uses Click's own exceptions
        pass
    try:
        import click
        errors.append(click.ClickException)
        aborts.append(click.exceptions.Abort)
    except ImportError:  # the core install: Typer's own copy only
        pass
    return tuple(errors), tuple(dict.fromkeys(aborts))


USAGE_ERRORS, ABORTS = _usage_error_types()

# What PostgreSQL refuses for reasons of its setting, not of this tool (by SQLSTATE).
OPERATOR_FACING = {
    "42501": "PostgreSQL refused a privilege: {line} (the role in --target lacks it; migrations run as the "
             "schema's owner, `schema roles` sets up the app's)",
    "25006": "the target is read-only: {line} (a standby, or default_transaction_read_only: point --target at "
             "the primary)",
    "53100": "PostgreSQL's disk is full: {line}; free space, then run the same command again to resume",
    "53200": "PostgreSQL is out of memory: {line}; run the same command again to resume",
    "53300": "PostgreSQL has no connection to spare: {line} (max_connections)",
    "57014": "a statement was cancelled: {line} (statement_timeout, or pg_cancel_backend); run the same command "
             "again to resume",
    "55P03": "a lock could not be taken: {line} (lock_timeout; another session holds it); run the same command "
             "again",
    "40P01": "a deadlock was broken by PostgreSQL: {line}; run the same command again",
    "57P01": "PostgreSQL is shutting down: {line}; run the same command again once it is back",
}


def main() -> None:
    """Run the CLI; any failure is one line on stderr and a non-zero exit, never a traceback."""
    try:
        code = app(standalone_mode=False)  # usage errors come here too, to be said in one line
    except USAGE_ERRORS as exc:
        exit_code = int(getattr(exc, "exit_code", 2))
        if type(exc).__name__ == "NoArgsIsHelpError":  # a group named alone: Typer printed its help
            sys.exit(exit_code)
        context = getattr(exc, "ctx", None)
        where = f" (see `{context.command_path} --help`)" if context is not None else ""
        _fail(f"{getattr(exc, 'format_message', exc.__str__)()}{where}", exit_code)
    except ABORTS:  # a prompt answered "no" (there is none today): as Click says it
        _fail("aborted", ExitCode.FAILED)
    except TrueLabelError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted; run the same command again to resume", ExitCode.INTERRUPTED)
    except psycopg.Error as exc:
        said = _postgres_says(exc)
        if said is None or os.environ.get("TRUELABEL_DEBUG"):
            _internal(exc)
        _fail(said, ExitCode.TARGET)
    except sqlite3.Error as exc:
        _fail(f"SQLite error: {_line(exc)}", ExitCode.SOURCE)
    except OSError as exc:
        _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), ExitCode.FAILED)
    except Exception as exc:  # a bug: still one line, the traceback on request
        _internal(exc)
    # typer.Exit(code) comes back as its code; a command's own return value (none returns one) is
    # ignored unless it is such a code, and a bool is not one
    if isinstance(code, int) and not isinstance(code, bool) and code:
        sys.exit(code)


def _postgres_says(exc: psycopg.Error) -> str | None:
    """What an operator can act on, in words; None for what only a bug explains."""
    line = _line(exc)
    if exc.sqlstate in OPERATOR_FACING:
        return OPERATOR_FACING[exc.sqlstate].format(line=line)
    if isinstance(exc, CATALOG_MISSING) and CATALOG in str(exc):
        return (f"the target database lacks truelabel-db's catalog ({line}): if no copy was made into it, "
                "check --target; if an older version migrated it, run `truelabel-db schema apply`")
    if isinstance(exc, psycopg.OperationalError):
        return f"lost the PostgreSQL connection: {line}; run the same command again to resume"
    return None


def _internal(exc: Exception) -> NoReturn:
    if os.environ.get("TRUELABEL_DEBUG"):
        raise exc
    _fail(f"internal error ({type(exc).__name__}): {_line(exc)} "
          "(set TRUELABEL_DEBUG=1 for the traceback)", ExitCode.INTERNAL)


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)   # a message's [brackets] are text
    sys.exit(code)
