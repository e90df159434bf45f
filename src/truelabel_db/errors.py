"""The errors truelabel-db raises on purpose.

Every failure a user can cause or fix (a missing file, a wrong URL, a locked database) is one of
these, with a message that says what happened and what to do. The CLI prints the message on one
line and exits with the class's exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Every exit status the CLI uses, in one place; the documentation's table is built from it.

    Each member's docstring-like comment is its meaning for a script that calls the tool.
    """

    OK = 0
    FAILED = 1                 # a failure with no more specific code (an OS error, a failed check)
    SOURCE = 2                 # the legacy SQLite file cannot be used; also a usage error (an option)
    SOURCE_LOCKED = 3          # the legacy file stayed locked longer than the busy timeout
    TARGET = 4                 # PostgreSQL cannot be used: unreachable, refused, wrong state
    TARGET_NOT_EMPTY = 5       # the target already holds rows and no --truncate was given
    CONFIG = 6                 # an option or setting is missing or contradictory
    RECONCILIATION = 7         # some source row is neither in PostgreSQL nor in quarantine
    EMBEDDED_CLUSTER = 8       # the demo's private PostgreSQL cluster could not start
    GATE = 9                   # Redis unreachable, or the cutover gate in the wrong state
    CUTOVER = 10               # the cutover failed and was undone
    ROLLBACK = 11              # the rollback failed; PostgreSQL is still the primary
    MIGRATE = 12               # a migrate step failed; its finished steps were rolled back
    NOT_PRIMARY = 13           # refused: the operation would write to a database that is not the primary
    UNMAPPED_SCHEMA = 14       # the legacy file has tables or columns the mapping does not know
    MISSING_EXTRA = 15         # the command needs an optional extra that is not installed (serve, s3 or bench)
    NO_CREDENTIALS = 16        # serve refused to listen beyond loopback: no API key and no admin token configured
    BACKUP = 20                # a backup cannot be taken, found, stored or restored
    BACKUP_KEY = 21            # no key, a malformed key, a key file others can read, or not the backup's key
    BACKUP_INTEGRITY = 22      # a backup's bytes are not the ones written
    RECOVERY = 23              # point-in-time recovery cannot be set up or carried out
    DRILL = 24                 # a disaster-recovery drill step failed
    MAINTENANCE = 30           # a maintenance job failed
    REPLICA = 31               # a replica could not be made or started
    INTERNAL = 70              # a bug: an unexpected exception (TRUELABEL_DEBUG=1 shows it)
    INTERRUPTED = 130          # interrupted (Ctrl-C); run the same command again to resume


def exit_code_meanings() -> list[tuple[int, str, str]]:
    """(code, name, meaning) for every exit code, read from the comments above: the docs' table."""
    import inspect

    meanings: dict[str, str] = {}
    for line in inspect.getsource(ExitCode).splitlines():
        name, _, rest = line.strip().partition("=")
        if "#" in rest:
            meanings[name.strip()] = rest.split("#", 1)[1].strip()
    return [(int(code), code.name, meanings.get(code.name, "")) for code in ExitCode]


class TrueLabelError(Exception):
    """Base class: a message meant for the user, and the exit code the CLI uses for it."""

    exit_code: int = ExitCode.FAILED


class SourceError(TrueLabelError):
    """The legacy SQLite file cannot be used: missing, not SQLite, corrupt or not True Label's."""

    exit_code: int = ExitCode.SOURCE


class SourceLockedError(SourceError):
    """The legacy file stayed locked by another process longer than the busy timeout."""

    exit_code: int = ExitCode.SOURCE_LOCKED


class TargetError(TrueLabelError):
    """The PostgreSQL target cannot be used: unreachable, refused, wrong version, wrong state."""

    exit_code: int = ExitCode.TARGET


class TargetNotEmptyError(TargetError):
    """The target already holds rows and the user did not say how to proceed."""

    exit_code: int = ExitCode.TARGET_NOT_EMPTY


class ConfigError(TrueLabelError):
    """An option or setting is missing or contradictory."""

    exit_code: int = ExitCode.CONFIG


class ReconciliationError(TrueLabelError):
    """Counts do not reconcile: some source row is neither in PostgreSQL nor in quarantine."""

    exit_code: int = ExitCode.RECONCILIATION


class EmbeddedClusterError(TrueLabelError):
    """The private PostgreSQL cluster used by the demo could not be created or started."""

    exit_code: int = ExitCode.EMBEDDED_CLUSTER


class NoCredentialsError(ConfigError):
    """``serve`` would listen beyond loopback while nobody can hold a credential."""

    exit_code: int = ExitCode.NO_CREDENTIALS
