"""Cache keys, their bounds, and the few groups a key belongs to.

A key is ``segment:segment:...``. Keys are built from request input (a product id, a brand id
in a URL), so a key is cached only when it is ``bounded``: at most ``MAX_SEGMENTS`` segments of
at most ``MAX_SEGMENT`` characters each, letters, digits and ``_.-`` only. Anything else (an
id of 10,000 colons, a path with spaces) is answered from the database and never stored: no
input can make the cache hold more than a short key for a request.

A group is a prefix of a key ending in ``:*`` that an invalidation rule names, so invalidating
``search:*`` never lists keys with ``KEYS`` or ``SCAN``: each group is a set of its members,
kept as keys are written. Only the group shapes the rules use (``GROUP_SHAPES``; a test holds
them to ``invalidation.RULES``) are kept; before, every prefix of every key was a group.
"""

from __future__ import annotations

import hashlib
import re

SEPARATOR = ":"
WILDCARD = "*"
ANY = "?"                 # one segment, any value, in a group shape
MAX_SEGMENT = 64          # a UUID is 36, a Prisma cuid 25, a QR code ~20
MAX_SEGMENTS = 5
_SEGMENT = re.compile(r"[A-Za-z0-9_.\-]{1,%d}" % MAX_SEGMENT)

# The groups invalidation rules name (``?``: one segment of any value).
GROUP_SHAPES = ("products:user:?:*", "products:latest:*", "validations:queue:*", "metrics:*", "search:*",
                "analytics:brand:?:*", "dashboard:*")
_SHAPES = tuple(tuple(shape.split(SEPARATOR)[:-1]) for shape in GROUP_SHAPES)


def bounded(key: str) -> bool:
    """Whether ``key`` may be cached: few, short segments of plain characters."""
    parts = key.split(SEPARATOR)
    return len(parts) <= MAX_SEGMENTS and all(_SEGMENT.fullmatch(part) for part in parts)


def groups_of(key: str) -> list[str]:
    """The declared groups ``key`` belongs to (a bounded key has at most a few)."""
    parts = key.split(SEPARATOR)
    found = []
    for shape in _SHAPES:
        if len(shape) < len(parts) and all(s in (ANY, p) for s, p in zip(shape, parts)):
            found.append(SEPARATOR.join(parts[:len(shape)]) + SEPARATOR + WILDCARD)
    return found


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
