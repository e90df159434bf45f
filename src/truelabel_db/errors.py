"""The errors truelabel-db raises on purpose.

Every failure a user can cause or fix (a missing file, a wrong URL, a locked database) is one of
these, with a message that says what happened and what to do. The CLI prints the message on one
line and exits with the class's exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class TrueLabelError(Exception):
    """Base class: a message meant for the user, and the exit code the CLI uses for it."""

    exit_code: int = 1


class SourceError(TrueLabelError):
    """The legacy SQLite file cannot be used: missing, not SQLite, corrupt or not True Label's."""

    exit_code = 2


class SourceLockedError(SourceError):
    """The legacy file stayed locked by another process longer than the busy timeout."""

    exit_code = 3


class TargetError(TrueLabelError):
    """The PostgreSQL target cannot be used: unreachable, refused, wrong version, wrong state."""

    exit_code = 4


class TargetNotEmptyError(TargetError):
    """The target already holds rows and the user did not say how to proceed."""

    exit_code = 5


class ConfigError(TrueLabelError):
    """An option or setting is missing or contradictory."""

    exit_code = 6


class ReconciliationError(TrueLabelError):
    """Counts do not reconcile: some source row is neither in PostgreSQL nor in quarantine."""

    exit_code = 7


class EmbeddedClusterError(TrueLabelError):
    """The private PostgreSQL cluster used by the demo could not be created or started."""

    exit_code = 8
