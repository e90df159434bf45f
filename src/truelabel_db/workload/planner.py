"""One writer's stream of operations: a pure function of the seed, the writer and the pool.

The planner never looks at the database. It draws a kind by weight, a connection kind by
``fk_on_share``, lets the kind's builder fill in the values from the writer's model, and
sometimes soils a value. Running the same plan twice gives the same operations in the same
order, whatever the database answered in between.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from itertools import accumulate

from truelabel_db.workload import changes, creates, deletes
from truelabel_db.workload.dirt import soil
from truelabel_db.workload.model import Model, Pool
from truelabel_db.workload.options import WorkloadOptions
from truelabel_db.workload.rows import Context
from truelabel_db.workload.statements import Operation, Unit

Builder = Callable[[Context], "tuple[Unit, ...] | None"]
BUILDERS: dict[str, Builder] = {**creates.BUILDERS, **changes.BUILDERS, **deletes.BUILDERS}

# The default mix: scans and events dominate, as in the app; every kind is frequent enough to
# occur within a few hundred operations.
DEFAULT_WEIGHTS: dict[str, float] = {
    "scan_qr": 14, "track_event": 9, "create_product": 6, "create_validation": 5,
    "create_user": 3, "create_laboratory": 1, "insert_orphan": 2,
    "update_product": 6, "queue_transition": 5, "approve_validation": 4, "verify_seal": 3,
    "change_user_email": 2, "change_product_codes": 2, "swap_product_codes": 1.5,
    "swap_user_emails": 1, "duplicate_unique": 1.5, "rekey_laboratory": 0.7,
    "upsert_user": 3, "upsert_seal": 2, "replace_product": 1.5, "replace_unique_clash": 1,
    "replace_scan": 1.5,
    "delete_product_each": 3, "delete_product_txn": 2, "delete_product_only": 1.5,
    "delete_user": 1, "delete_report": 1.5, "delete_queue_entry": 1.5, "delete_scans": 2,
    "delete_events": 2,
}
KINDS = frozenset(BUILDERS)
STEP_MS = 100  # logical time between two operations of one writer
FALLBACK = "create_user"  # always possible, whatever the writer knows


def writer_seed(seed: int, writer: int) -> int:
    """Each writer's own seed, derived from the run's (stable across Python versions and runs)."""
    digest = hashlib.sha256(f"truelabel-workload:{seed}:{writer}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class Planner:
    def __init__(self, options: WorkloadOptions, pool: Pool, writer: int) -> None:
        self.rng = random.Random(writer_seed(options.seed, writer))
        self.model = Model(pool, writer, options.processes)
        weights = {**DEFAULT_WEIGHTS, **options.weights}
        self.kinds = [k for k in sorted(weights) if weights[k] > 0] or [FALLBACK]
        self.cumulative = list(accumulate(weights.get(k, 1.0) for k in self.kinds))
        self.options, self.writer, self.planned = options, writer, 0

    def next(self) -> Operation:
        now = self.options.clock_ms + self.planned * STEP_MS + self.writer
        self.planned += 1
        fk_on = self.rng.random() < self.options.fk_on_share
        kind, units = self._draw(Context(self.rng, self.model, now))
        return Operation(kind, soil(units, self.options.dirt_rate, self.rng), fk_on)

    def _draw(self, context: Context) -> tuple[str, tuple[Unit, ...]]:
        """A kind by weight; one with nothing to act on yet gives way to another draw."""
        for _ in range(8):
            kind = self.rng.choices(self.kinds, cum_weights=self.cumulative)[0]
            units = BUILDERS[kind](context)
            if units:
                return kind, units
        return FALLBACK, creates.create_user(context)
