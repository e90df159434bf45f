"""The workload's operations as values: what the app asks of the database, before any SQL.

An operation is written once, in the legacy table and column names, and each target renders
it: SQLite as the Prisma app issues it, PostgreSQL through the declared mapping after cutover.
Keeping operations as data is what makes a run replayable (the same seed plans the same
values) and diagnosable (the operation log is these values as JSON).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

Value = str | int | float | None
Match = Value | tuple[Value, ...]  # a tuple matches any of its values (SQL IN)


@dataclass(frozen=True)
class Upsert:
    """``INSERT ... ON CONFLICT (conflict) DO UPDATE SET update``: Prisma's native upsert."""

    conflict: tuple[str, ...]
    update: tuple[str, ...]


REPLACE: Final = "replace"  # ``INSERT OR REPLACE``: a conflicting row (on any unique key) is deleted first

Conflict = Upsert | Literal["replace"] | None


@dataclass(frozen=True)
class Insert:
    """One row. ``dirt`` holds, per column, a dirty value a script wrote instead of the clean one."""

    table: str
    values: Mapping[str, Value]
    conflict: Conflict = None
    dirt: Mapping[str, tuple[str, Value]] = field(default_factory=dict)

    def written(self) -> dict[str, Value]:
        """The values as they reach a legacy file: the clean ones with the dirt put in."""
        return {**self.values, **{c: v for c, (_, v) in self.dirt.items()}}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"insert": self.table, "values": dict(self.values)}
        if isinstance(self.conflict, Upsert):
            out["upsert"] = {"conflict": list(self.conflict.conflict), "update": list(self.conflict.update)}
        elif self.conflict == REPLACE:
            out["or_replace"] = True
        if self.dirt:
            out["dirt"] = {c: [kind, v] for c, (kind, v) in self.dirt.items()}
        return out


@dataclass(frozen=True)
class Update:
    table: str
    values: Mapping[str, Value]
    where: Mapping[str, Match]
    dirt: Mapping[str, tuple[str, Value]] = field(default_factory=dict)

    def written(self) -> dict[str, Value]:
        return {**self.values, **{c: v for c, (_, v) in self.dirt.items()}}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"update": self.table, "set": dict(self.values), "where": _where(self.where)}
        if self.dirt:
            out["dirt"] = {c: [kind, v] for c, (kind, v) in self.dirt.items()}
        return out


@dataclass(frozen=True)
class Delete:
    """Prisma's ``deleteMany({where})``: every row matching, possibly none."""

    table: str
    where: Mapping[str, Match]

    def to_dict(self) -> dict[str, Any]:
        return {"delete": self.table, "where": _where(self.where)}


Statement = Insert | Update | Delete
Unit = tuple[Statement, ...]  # statements committed together: one transaction


@dataclass(frozen=True)
class Operation:
    """One thing the app does. Each unit is its own transaction, run in order; the first unit
    refused ends the operation (the app's code throws there), the units before it stay committed.

    ``fk_on`` says which kind of connection issues it: the Prisma app (foreign keys ON) or a
    script or admin tool (OFF, where SQLite enforces nothing and orphans are possible).
    """

    kind: str
    units: tuple[Unit, ...]
    fk_on: bool = True

    @property
    def statements(self) -> int:
        return sum(len(unit) for unit in self.units)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "fk": self.fk_on,
                "units": [[s.to_dict() for s in unit] for unit in self.units]}


def _where(where: Mapping[str, Match]) -> dict[str, Any]:
    return {c: list(v) if isinstance(v, tuple) else v for c, v in where.items()}


def each(*statements: Statement) -> tuple[Unit, ...]:
    """Every statement in its own transaction: Prisma calls awaited one after another."""
    return tuple((s,) for s in statements)


def together(*statements: Statement) -> tuple[Unit, ...]:
    """All statements in one transaction: a nested write or ``$transaction([...])``."""
    return (tuple(statements),)
