"""The dirt that long-lived SQLite files carry, injected at a known rate with known outcomes.

Every kind MISSION.md lists is here, each on a column where it really happens. (A number
written as text into an INTEGER column is not among them: SQLite's type affinity stores it as
an integer, so it never reaches the copy as text; text that is not a number does.) The outcome of
each dirty value (repaired or quarantined) is not hard-coded: it is what the declared mapping
does with it, so the generator's expectations and the copy cannot drift apart. Quarantining
dirt goes only on rows no other row references, so no cascade blurs the expected counts.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from truelabel_db.schema.mapping import BY_LEGACY
from truelabel_db.schema.transforms import Unconvertible

Outcome = Literal["repaired", "quarantined"]


@dataclass(frozen=True)
class DirtyValue:
    table: str
    key: str
    column: str
    kind: str
    outcome: Outcome

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _iso(ms: Any, rng: random.Random) -> str:
    moment = datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _sqlite_text(ms: Any, rng: random.Random) -> str:
    return datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _orphan(value: Any, rng: random.Random) -> str:
    import uuid

    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


MAKERS: dict[str, Callable[[Any, random.Random], Any]] = {
    "ts_sqlite_text": _sqlite_text,
    "ts_iso_text": _iso,
    "ts_epoch_seconds": lambda ms, rng: int(ms) // 1000,
    "enum_wrong_case": lambda v, rng: str(v).lower(),
    "bool_as_text": lambda v, rng: "true" if v else "false",
    "json_malformed": lambda v, rng: (v or '{"a": 1}')[: max(1, len(v or '{"a": 1}') // 2)],
    "enum_unknown": lambda v, rng: rng.choice(("ARCHIVED", "ON_HOLD", "DELETED")),
    "nul_byte": lambda v, rng: (v or "texto") + "\x00fim",
    "int_garbage_text": lambda v, rng: rng.choice(("abc", "n/a", "12h")),
    "orphan_fk": _orphan,
    "bad_ip": lambda v, rng: rng.choice(("999.1.2.3", "unknown", "10.0.0")),
    "bad_uuid": lambda v, rng: "cl" + "".join(rng.choice("abcdefghijkmnopqrstuvwxyz0123456789")
                                              for _ in range(23)),
}

# Where each kind is put: (column, kind). Quarantining kinds only on rows nothing references.
PLACES: dict[str, tuple[tuple[str, str], ...]] = {
    "users": (("createdAt", "ts_sqlite_text"), ("role", "enum_wrong_case")),
    "laboratories": (("isActive", "bool_as_text"),),
    "products": (("status", "enum_wrong_case"), ("updatedAt", "ts_iso_text")),
    "reports": (("createdAt", "ts_iso_text"),),
    "validations": (("status", "enum_wrong_case"), ("status", "enum_unknown"),
                    ("claimsValidated", "json_malformed"), ("productId", "orphan_fk"),
                    ("createdAt", "ts_sqlite_text")),
    "product_seals": (("notes", "nul_byte"), ("issuedDate", "ts_epoch_seconds")),
    "validation_queue": (("estimatedDuration", "int_garbage_text"),
                         ("dueDate", "ts_sqlite_text"), ("priority", "enum_wrong_case")),
    "validation_queue_history": (("metadata", "json_malformed"), ("performedById", "orphan_fk")),
    "qr_code_accesses": (("accessedAt", "ts_epoch_seconds"), ("ipAddress", "bad_ip"),
                         ("userAgent", "nul_byte"), ("location", "json_malformed")),
    "analytics_events": (("entityId", "bad_uuid"), ("timestamp", "ts_iso_text"),
                         ("data", "json_malformed"), ("userId", "orphan_fk")),
}
KINDS = tuple(sorted({kind for places in PLACES.values() for _, kind in places}))


def outcome_of(table: str, column: str, kind: str, value: Any) -> Outcome:
    """What the copy will do with ``value``: asked of the mapping, not assumed."""
    if kind == "orphan_fk":
        return "quarantined"
    mapped = next(c for c in BY_LEGACY[table].columns if c.legacy == column)
    try:
        mapped.convert(value)
    except Unconvertible:
        return "quarantined"
    return "repaired"


class DirtPlan:
    """Which rows of a table get which dirt, chosen before the table is generated."""

    def __init__(self, table: str, rows: int, rate: float, rng: random.Random, enabled: bool) -> None:
        places = PLACES.get(table, ()) if enabled else ()
        count = min(rows, max(len(places), round(rate * rows))) if places else 0
        picked = rng.sample(range(rows), count) if count else []
        self.table = table
        self.by_row = {row: places[i % len(places)] for i, row in enumerate(picked)}
        self.found: list[DirtyValue] = []
        self.rng = rng

    def quarantined_rows(self) -> set[int]:
        """Rows that will be quarantined: children must not reference them."""
        return {row for row, (_, kind) in self.by_row.items()
                if kind in ("int_garbage_text", "json_malformed", "enum_unknown", "nul_byte",
                            "orphan_fk", "bad_ip", "bad_uuid")}

    def apply(self, index: int, row: list[Any], columns: dict[str, int]) -> None:
        place = self.by_row.get(index)
        if place is None:
            return
        column, kind = place
        position = columns[column]
        value = MAKERS[kind](row[position], self.rng)
        row[position] = value
        self.found.append(DirtyValue(self.table, str(row[columns["id"]]), column, kind,
                                     outcome_of(self.table, column, kind, value)))
