"""The reference service's API keys (``truelabel_meta.api_keys``).

A token is ``tlk_<prefix>_<secret>``: a 12-hex-digit public prefix, to find the key by, and a
256-bit random secret. Only SHA-256 of the whole token is stored: the secret is too long to
guess, so a slow password hash would buy nothing, and a stolen table yields no usable token.
The token exists once, in :class:`NewKey`, for its creator to hand over; it is never stored,
logged or shown again.

The service's role reads keys only through ``truelabel_meta.lookup_api_key(prefix)`` and
``has_active_api_key()`` (SECURITY DEFINER): it cannot list keys or read another key's digest.
Keys are created, listed and revoked by the schema's owner (``truelabel-db keys``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from truelabel_db.errors import ConfigError
from truelabel_db.postgres import one

TOKEN = re.compile(r"tlk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")   # always fullmatch: `$` passes a final "\n"
ROLES = ("admin", "service", "lab")
BRAND = re.compile(r"brand:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DOMAIN = b"truelabel-api-key\x00"   # a digest of this kind is never mistaken for another SHA-256


@dataclass(frozen=True)
class ApiKey:
    prefix: str
    scopes: tuple[str, ...]
    label: str | None
    created_at: datetime
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "scopes": list(self.scopes), "label": self.label,
                "created_at": self.created_at.isoformat(),
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    token: str    # shown once to whoever created it; nowhere else


def digest(token: str) -> bytes:
    return hashlib.sha256(_DOMAIN + token.encode()).digest()


def prefix_of(token: str) -> str | None:
    """The public prefix of a well-formed token; None for anything else (never looked up)."""
    match = TOKEN.fullmatch(token)
    return match.group(1) if match else None


def checked_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes, lower-cased and without repeats; ``ConfigError`` for one we do not know."""
    chosen = tuple(dict.fromkeys(s.strip().lower() for s in scopes))
    if not chosen:
        raise ConfigError("a key needs at least one scope (admin, service, lab or brand:<brand id>)")
    for scope in chosen:
        if scope not in ROLES and not BRAND.fullmatch(scope):
            raise ConfigError(f"unknown scope {scope!r}: use admin, service, lab or brand:<brand user id (a UUID)>")
    return chosen


def create(conn: psycopg.Connection, scopes: Iterable[str], label: str | None = None) -> NewKey:
    """A new key with a fresh random token; the token is returned, only its digest stored."""
    chosen = checked_scopes(scopes)
    token = f"tlk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    row = one(conn.execute(
        "INSERT INTO truelabel_meta.api_keys (prefix, digest, scopes, label) VALUES (%s, %s, %s, %s) "
        "RETURNING prefix, scopes, label, created_at, revoked_at",
        (prefix_of(token), digest(token), list(chosen), label)))
    return NewKey(_key(row), token)


def list_keys(conn: psycopg.Connection, *, include_revoked: bool = False) -> list[ApiKey]:
    rows = conn.execute("SELECT prefix, scopes, label, created_at, revoked_at FROM truelabel_meta.api_keys "
                        "WHERE %s OR revoked_at IS NULL ORDER BY created_at, id", (include_revoked,))
    return [_key(r) for r in rows]


def revoke(conn: psycopg.Connection, prefix: str) -> bool:
    """Revoke the active key with this prefix; False if there is none."""
    return conn.execute("UPDATE truelabel_meta.api_keys SET revoked_at = now() "
                        "WHERE prefix = %s AND revoked_at IS NULL", (prefix,)).rowcount == 1


def scopes_of(conn: psycopg.Connection, token: str) -> tuple[str, ...] | None:
    """The scopes of an active key whose token this is; None otherwise.

    Through the definer function (the service's role cannot read the table), and the digests
    compared in constant time: how long a refusal takes says nothing about a stored digest.
    """
    prefix = prefix_of(token)
    if prefix is None:
        return None
    row = conn.execute("SELECT digest, scopes FROM truelabel_meta.lookup_api_key(%s)", (prefix,)).fetchone()
    if row is None or not hmac.compare_digest(bytes(row[0]), digest(token)):
        return None
    return tuple(row[1])


def any_active(conn: psycopg.Connection) -> bool:
    """Whether at least one key is active (False where the schema has no keys yet)."""
    if not one(conn.execute("SELECT to_regprocedure('truelabel_meta.has_active_api_key()') IS NOT NULL"))[0]:
        return False
    return bool(one(conn.execute("SELECT truelabel_meta.has_active_api_key()"))[0])


def _key(row: Any) -> ApiKey:
    return ApiKey(row[0], tuple(row[1]), row[2], row[3], row[4])
