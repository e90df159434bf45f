"""The database's changes as the plan's domain events (§4.2), so one rule fires whoever wrote.

A change logged by PostgreSQL's triggers (``catalog.cache_changes``) names its table and what
the rules need; here each becomes the event the service would have raised for it, and a sweep's
events become one invalidation (``invalidation.merge``): a follower batch of 500 products is one
Redis script, not 500. Scans are not invalidated here: their brands go to the coalescing
``ScanInvalidations`` (the ``scan:create`` rule's window). A truncated table (``*``) cannot be
named key by key: the whole cache is emptied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from truelabel_db.cache.invalidation import Invalidator, Planned, merge, plan
from truelabel_db.catalog.cache_changes import Change
from truelabel_db.errors import ConfigError

EVERYTHING = "*"


def event_of(change: Change) -> tuple[str, dict[str, Any]] | None:
    """The rule event and its context for one change (None: scans, and tables no rule reads)."""
    if change.table == "products":
        return "product:update", {"id": change.key, "userId": change.brand, "qrCode": change.qr}
    if change.table == "validations":
        return "validation:update", {"productId": change.key}
    if change.table == "validation_queue":
        return "queue:update", {}
    if change.table == "users":
        return "user:update", {"userId": change.key}
    if change.table == "brand_dashboard_stats":  # refreshed, by whoever (no trigger on a view)
        return "dashboard:refresh", {}
    return None


@dataclass
class Digest:
    """What one sweep's changes call for."""

    planned: Planned = field(default_factory=Planned)
    scanned_brands: set[str] = field(default_factory=set)
    everything: bool = False


def digest(changes: Iterable[Change]) -> Digest:
    out = Digest()
    plans = []
    for change in changes:
        if change.table == EVERYTHING:
            out.everything = True
        elif change.table == "qr_code_access":
            if change.brand:
                out.scanned_brands.add(change.brand)
        elif (event := event_of(change)) is not None:
            try:
                plans.append(plan(*event))
            except ConfigError:  # a row the rules cannot name (a NULL key): forget everything
                out.everything = True
    out.planned = merge(plans)
    return out


class ChangeApplier:
    """Applies swept changes to this process's cache: L2 and L3 (shared; every process does it,
    idempotently) and this process's L1, without publishing (every process hears the database)."""

    def __init__(self, invalidator: Invalidator, note_scans: Callable[[Iterable[str]], None]) -> None:
        self.invalidator, self.note_scans = invalidator, note_scans

    def __call__(self, changes: Sequence[Change]) -> Digest:
        found = digest(changes)
        cache = self.invalidator.cache
        cache.stats.add("db_events", len(changes))
        if found.everything:
            cache.flush()
            return found
        self.invalidator.apply(found.planned)
        if found.scanned_brands:
            self.note_scans(found.scanned_brands)
        return found
