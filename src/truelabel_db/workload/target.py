"""What a workload writes into: the contract both targets (SQLite, PostgreSQL) keep.

A target runs one transaction unit and either returns the rows each statement touched or
says, with one of three exceptions, why not: the database refused it (a constraint: an app
error, expected), it was locked (try again), or it is fenced (no longer the primary: ask the
gate where to write and try there).
"""

from __future__ import annotations

from typing import Protocol

from truelabel_db.workload.statements import Unit


class Refused(Exception):
    """A constraint refused the unit; ``reason`` is foreign_key, unique, not_null, check or data."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Locked(Exception):
    """The database stayed locked past the busy timeout (or a serialization failure): retry."""


class Fenced(Exception):
    """This database is no longer the primary."""


class Target(Protocol):
    name: str

    def run_unit(self, unit: Unit, fk_on: bool) -> list[int]:
        """Run ``unit`` as one transaction; the row count of each statement."""
        ...

    def close(self) -> None: ...
