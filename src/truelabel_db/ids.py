"""One spelling per UUID, for everything that turns request input into a key or a query.

PostgreSQL reads a UUID in capitals or without hyphens as the same row, and Python's
``uuid.UUID`` takes still more spellings (``urn:uuid:``, braces) than PostgreSQL does. The
service's routes and the cache's keys both need the one canonical text (lower case, hyphenated,
as PostgreSQL prints it), so that an id spelled differently is neither a second cache key that no
invalidation names nor a database error.
"""

from __future__ import annotations

import re
import uuid

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32}")


def canonical_uuid(text: str) -> str | None:
    """``text`` as a lower-case hyphenated UUID if it is spelled as one (36 characters with
    hyphens, or 32 hex digits, any case); None for anything else."""
    if not _UUID.fullmatch(text):
        return None
    return str(uuid.UUID(hex=text))
