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

from truelabel_db.ids import canonical_uuid

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

# A key is never cached when it holds this (not a segment character): for ids and numbers whose
# spelling would give one answer several keys, not all of which an invalidation names.
UNCACHEABLE = "!"

# Page sizes that are cached: a list asked for with another limit is answered from the next
# size up, sliced, so a client choosing every limit from 1 to 5000 makes a handful of keys.
PAGES = (20, 50, 100, 200, 500, 1000, 2000, 5000)
SEARCH_PAGES = (20, 50)   # a search page is cached only up to 50 rows (see ``search``)
# Analytics windows that are cached; any other number of days is computed every time.
ANALYTICS_DAYS = (1, 7, 14, 30, 60, 90, 180, 365)

_UUID_LIKE = re.compile(r"(?i)(urn:uuid:)?\{?[0-9a-f-]{32,}\}?")


def canonical_id(value: str) -> str | None:
    """One spelling per id, the one the invalidation rules use (PostgreSQL's uuid text).

    A UUID written in capitals or without hyphens is the same row to PostgreSQL: it becomes
    the lower-case hyphenated form. Other spellings PostgreSQL also reads (``urn:uuid:``, braces,
    hyphens after every fourth digit) are None: not cached, answered from the database. Ids
    that are not UUIDs (a legacy cuid) are kept as they are."""
    canonical = canonical_uuid(value)
    if canonical is not None:
        return canonical
    if _UUID_LIKE.fullmatch(value) and len(re.sub(r"[^0-9A-Fa-f]", "", value.lower().removeprefix("urn:uuid:"))) == 32:
        return None
    return value


def _id_segment(value: str) -> str:
    found = canonical_id(value)
    return UNCACHEABLE if found is None else found


def page_of(limit: int, pages: tuple[int, ...] = PAGES) -> int | None:
    """The cached page size that holds the first ``limit`` rows (None: larger than any)."""
    return next((page for page in pages if limit <= page), None)


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
    return f"product:{_id_segment(product_id)}"


def product_by_qr(qr_code: str) -> str:
    return f"qr:{qr_code}"


def _page(limit: int, pages: tuple[int, ...] = PAGES) -> str:
    page = page_of(limit, pages)
    return UNCACHEABLE if page is None else str(page)


def latest_products(limit: int) -> str:
    """The key of the page that holds the first ``limit`` products (``page_of``)."""
    return f"products:latest:{_page(limit)}"


def dashboard(brand_id: str) -> str:
    return f"dashboard:brand:{_id_segment(brand_id)}"


def analytics(brand_id: str, days: int) -> str:
    return f"analytics:brand:{_id_segment(brand_id)}:{days if days in ANALYTICS_DAYS else UNCACHEABLE}"


def queue(limit: int) -> str:
    return f"validations:queue:{_page(limit)}"


def search(text: str, limit: int) -> str:
    """A search page of at most 50 rows (20 or 50, sliced); a larger one is not cached."""
    page = page_of(limit, SEARCH_PAGES)
    if page is None:
        return f"search:{UNCACHEABLE}"
    digest = hashlib.sha256(f"{page}\x00{' '.join(text.lower().split())}".encode()).hexdigest()[:24]
    return f"search:{digest}"
