"""Invalidation rules (plan §4.2): a domain event names the keys and groups it makes stale.

Patterns are interpolated from the event's context (``product:{id}``); a pattern ending in
``:*`` is a group (see ``keys``), so no rule ever needs ``KEYS``. A delayed rule coalesces:
while one is pending for a pattern, the same pattern is not scheduled again, which keeps a
burst of scans from invalidating the analytics a thousand times a second.
"""

from __future__ import annotations

import string
import threading
from dataclasses import dataclass, field
from typing import Any

from truelabel_db.cache.keys import is_group
from truelabel_db.cache.layered import LayeredCache
from truelabel_db.errors import ConfigError


@dataclass(frozen=True)
class Rule:
    pattern: str
    delay: float = 0.0


RULES: dict[str, tuple[Rule, ...]] = {
    "product:create": (Rule("products:user:{userId}:*"), Rule("products:latest:*"),
                       Rule("dashboard:brand:{userId}"), Rule("search:*", delay=1.0)),
    # analytics show the brand's top products by name: a rename is seen there at once too
    "product:update": (Rule("product:{id}"), Rule("products:user:{userId}:*"), Rule("products:latest:*"),
                       Rule("qr:{qrCode}"), Rule("dashboard:brand:{userId}"), Rule("validations:queue:*"),
                       Rule("analytics:brand:{userId}:*"), Rule("search:*", delay=1.0)),
    "validation:create": (Rule("product:{productId}"), Rule("products:latest:*"),
                          Rule("validations:queue:*"), Rule("metrics:*")),
    "validation:update": (Rule("product:{productId}"), Rule("products:latest:*"),
                          Rule("validations:queue:*"), Rule("metrics:*")),
    "queue:update": (Rule("validations:queue:*"),),
    # a brand's name is in each of its products' answers (their pages are logged as
    # product changes by the database, see db_events) and in the product list
    "user:update": (Rule("dashboard:brand:{userId}"), Rule("products:latest:*")),
    "scan:create": (Rule("analytics:brand:{userId}:*", delay=5.0),),
    "dashboard:refresh": (Rule("dashboard:*"),),
}


@dataclass
class Planned:
    keys: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    delayed: list[tuple[str, float]] = field(default_factory=list)


def _fields(pattern: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(pattern) if name]


def plan(event: str, context: dict[str, Any], rules: dict[str, tuple[Rule, ...]] = RULES) -> Planned:
    if event not in rules:
        raise ConfigError(f"unknown cache event {event!r}; known: {', '.join(sorted(rules))}")
    planned = Planned()
    for rule in rules[event]:
        missing = [f for f in _fields(rule.pattern) if context.get(f) in (None, "")]
        if missing:
            if rule.pattern.startswith(("qr:",)):  # optional: a product without a QR code
                continue
            raise ConfigError(f"event {event} needs {', '.join(missing)} in its context")
        pattern = rule.pattern.format(**{k: str(v) for k, v in context.items()})
        if rule.delay:
            planned.delayed.append((pattern, rule.delay))
        elif is_group(pattern):
            planned.groups.append(pattern)
        else:
            planned.keys.append(pattern)
    return planned


def merge(plans: list[Planned]) -> Planned:
    """Many events' patterns as one invalidation (each pattern once, in first-seen order)."""
    merged = Planned()
    for one in plans:
        merged.keys += [k for k in one.keys if k not in merged.keys]
        merged.groups += [g for g in one.groups if g not in merged.groups]
        merged.delayed += [d for d in one.delayed if d not in merged.delayed]
    return merged


class Invalidator:
    """Applies rules to a cache. ``publish=False`` for invalidations every process finds by
    itself (database events): the others need not be told over the bus."""

    def __init__(self, cache: LayeredCache, rules: dict[str, tuple[Rule, ...]] = RULES, *,
                 publish: bool = True) -> None:
        self.cache, self.rules, self.publish = cache, rules, publish
        self._pending: dict[str, threading.Timer] = {}
        self._lock = threading.Lock()

    def invalidate(self, event: str, context: dict[str, Any]) -> Planned:
        planned = plan(event, context, self.rules)
        self.apply(planned)
        return planned

    def apply(self, planned: Planned) -> None:
        if planned.keys or planned.groups:
            self.cache.invalidate(planned.keys, planned.groups, publish=self.publish)
        for pattern, delay in planned.delayed:
            self._schedule(pattern, delay)

    def _schedule(self, pattern: str, delay: float) -> None:
        with self._lock:
            if pattern in self._pending:
                return
            timer = threading.Timer(delay, self._fire, args=(pattern,))
            timer.daemon = True
            self._pending[pattern] = timer
        timer.start()

    def _fire(self, pattern: str) -> None:
        with self._lock:
            self._pending.pop(pattern, None)
        if is_group(pattern):
            self.cache.invalidate((), [pattern], publish=self.publish)
        else:
            self.cache.invalidate([pattern], (), publish=self.publish)

    def flush(self) -> None:
        """Run every pending delayed invalidation now (on shutdown, so none is lost)."""
        with self._lock:
            pending, self._pending = list(self._pending.items()), {}
        for pattern, timer in pending:
            timer.cancel()
            self._fire(pattern)
