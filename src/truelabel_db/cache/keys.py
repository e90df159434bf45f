"""Cache keys, and the groups a key belongs to.

A key is ``segment:segment:...``; it belongs to every prefix group of it (``products:*``,
``products:user:*``, ``products:user:<id>:*``). An invalidation rule's pattern is either an
exact key or such a group, so invalidating ``search:*`` never lists keys with ``KEYS`` or
``SCAN``: each group is a set of its members, kept as keys are written.
"""

from __future__ import annotations

import hashlib

SEPARATOR = ":"
WILDCARD = "*"


def groups_of(key: str) -> list[str]:
    parts = key.split(SEPARATOR)
    return [SEPARATOR.join(parts[:n]) + SEPARATOR + WILDCARD for n in range(1, len(parts))]


def is_group(pattern: str) -> bool:
    if WILDCARD in pattern[:-1]:
        raise ValueError(f"a pattern may only end with '*': {pattern!r}")
    return pattern.endswith(SEPARATOR + WILDCARD) or pattern == WILDCARD


def product(product_id: str) -> str:
    return f"product:{product_id}"


def product_by_qr(qr_code: str) -> str:
    return f"qr:{qr_code}"


def latest_products(limit: int) -> str:
    return f"products:latest:{limit}"


def dashboard(brand_id: str) -> str:
    return f"dashboard:brand:{brand_id}"


def analytics(brand_id: str, days: int) -> str:
    return f"analytics:brand:{brand_id}:{days}"


def queue(limit: int) -> str:
    return f"validations:queue:{limit}"


def search(text: str, limit: int) -> str:
    digest = hashlib.sha256(f"{limit}\x00{' '.join(text.lower().split())}".encode()).hexdigest()[:24]
    return f"search:{digest}"
