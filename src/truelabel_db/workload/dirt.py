"""Dirty values now and then, of the kinds the legacy side knows (:mod:`truelabel_db.legacy.dirt`).

A script or an old version of the app writes a timestamp as text, an enum in the wrong case,
half a JSON document. The workload puts such a value into an insert or an update at
``dirt_rate``, in the columns where it really happens; the copy and the follower must repair
or quarantine it. PostgreSQL never receives dirt: after cutover the app writes typed values.
"""

from __future__ import annotations

import random
from dataclasses import replace

from truelabel_db.legacy.dirt import MAKERS, PLACES
from truelabel_db.workload.statements import Insert, Statement, Unit, Update


def soil(units: tuple[Unit, ...], rate: float, rng: random.Random) -> tuple[Unit, ...]:
    """``units`` with, at ``rate`` per insert or update, one value replaced by a dirty one."""
    if rate <= 0:
        return units
    return tuple(tuple(_soil_one(s, rate, rng) for s in unit) for unit in units)


def _soil_one(statement: Statement, rate: float, rng: random.Random) -> Statement:
    if not isinstance(statement, (Insert, Update)) or rng.random() >= rate:
        return statement
    places = [(column, kind) for column, kind in PLACES.get(statement.table, ())
              if statement.values.get(column) is not None]
    if not places:
        return statement
    column, kind = places[rng.randrange(len(places))]
    dirty = MAKERS[kind](statement.values[column], rng)
    return replace(statement, dirt={**statement.dirt, column: (kind, dirty)})
