"""Who is asking: the service's credentials, as FastAPI security dependencies.

A caller presents a token as ``Authorization: Bearer <token>`` (or ``X-API-Key: <token>``).
Two kinds are accepted:

- an API key (``truelabel-db keys create``; ``catalog.api_keys`` owns them), checked through
  the definer function on the configured PostgreSQL database (the keys live there whichever
  database the service is serving), its verdict remembered ``auth_cache_seconds`` so a request
  costs no round trip (a revocation therefore takes that long to reach a running service);
- the operator's admin token, ``TRUELABEL_ADMIN_TOKEN`` in serve's environment, for a service
  without PostgreSQL (before the migration) or to bootstrap; only its SHA-256 travels in the
  workers' configuration.

Scopes: ``admin`` (everything), ``service`` (the app's back end and the metrics scraper:
everything but creating keys, which is the CLI's), ``lab`` (the validation queue),
``brand:<id>`` (that brand's analytics and dashboard). Public data (products, search, scans)
needs no token. The check runs before the handler, so a cached answer is as protected as a
database one; that is also why brand isolation is enforced here rather than by row-level
security in PostgreSQL (see docs/security.md).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool

from truelabel_db.catalog import api_keys
from truelabel_db.hotpaths.awaitable import in_thread
from truelabel_db.hotpaths.postgres_paths import connection_kwargs
from truelabel_db.postgres import connect
from truelabel_db.service.config import ServiceConfig
from truelabel_db.service.limits import MAX_ID
from truelabel_db.service.primary_choice import configured_postgres

ADMIN_TOKEN_ENV = "TRUELABEL_ADMIN_TOKEN"
ADMIN, SERVICE, LAB = "admin", "service", "lab"
READS_ANY_BRAND = frozenset({ADMIN, SERVICE})
CHALLENGE = {"WWW-Authenticate": "Bearer"}

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer tlk_...`")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The same key in X-API-Key")


@dataclass(frozen=True)
class Principal:
    scopes: frozenset[str]
    key: str             # the key's public prefix, or "admin-token": for logs, never the token

    def allows(self, *scopes: str) -> bool:
        return bool(self.scopes & {ADMIN, *scopes})


def admin_token_digest(token: str) -> str:
    """What the workers' configuration carries instead of the admin token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


class Authenticator:
    """Tokens to principals, with a short memory of each verdict (bounded, per process)."""

    def __init__(self, config: ServiceConfig) -> None:
        self._admin = bytes.fromhex(config.admin_token_sha256) if config.admin_token_sha256 else None
        self._url = configured_postgres(config)
        self._ttl = config.auth_cache_seconds
        self._pool: ConnectionPool | None = None
        self._opening = threading.Lock()   # the first lookups run in several threads at once
        self._prepare = config.prepare
        self._seen: dict[bytes, tuple[float, Principal | None]] = {}

    async def principal(self, token: str) -> Principal | None:
        if self._admin is not None and hmac.compare_digest(hashlib.sha256(token.encode()).digest(), self._admin):
            return Principal(frozenset({ADMIN}), "admin-token")
        prefix = api_keys.prefix_of(token)
        if prefix is None or self._url is None:
            return None
        key, now = api_keys.digest(token), time.monotonic()
        seen = self._seen.get(key)
        if seen is not None and seen[0] > now:
            return seen[1]
        scopes = await in_thread(self._lookup, token)
        found = Principal(frozenset(scopes), prefix) if scopes else None
        self._remember(key, now, found)
        return found

    def _remember(self, key: bytes, now: float, found: Principal | None) -> None:
        if self._ttl <= 0:
            return
        if len(self._seen) >= 10_000:   # bounded: made-up tokens cannot grow it without end
            self._seen = {k: v for k, v in self._seen.items() if v[0] > now}
            if len(self._seen) >= 10_000:
                self._seen.clear()
        self._seen[key] = (now + self._ttl, found)

    def _lookup(self, token: str) -> tuple[str, ...] | None:
        with self._opening:
            if self._pool is None:
                assert self._url is not None
                self._pool = ConnectionPool(self._url, min_size=0, max_size=2, name="truelabel-auth", open=True,
                                            kwargs=connection_kwargs("truelabel-auth", prepare=self._prepare))
        with self._pool.connection(timeout=5) as conn:
            return api_keys.scopes_of(conn, token)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()


def credentials_configured(config: ServiceConfig) -> bool:
    """Whether anyone can hold a credential: the admin token, or one active key in the database."""
    if config.admin_token_sha256:
        return True
    url = configured_postgres(config)
    if url is None:
        return False
    with connect(url, autocommit=True, application_name="truelabel-serve") as conn:
        return api_keys.any_active(conn)


class Guards:
    """The dependencies handlers declare: who is asking, and whether their scopes allow it."""

    def __init__(self, authenticator: Callable[[], Authenticator]) -> None:
        self._auth = authenticator

    async def optional(self, request: Request,
                       credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                       header_key: str | None = Depends(api_key_header)) -> Principal | None:
        """The caller, None when no token was given; 401 for a token that is not valid."""
        token = credentials.credentials if credentials is not None else header_key
        if not token:
            return None
        found = await self._auth().principal(token)
        if found is None:
            raise HTTPException(401, "invalid or revoked API key", headers=CHALLENGE)
        request.state.principal = found.key
        return found

    def scoped(self, *scopes: str) -> Callable[..., object]:
        """A dependency: a caller holding one of ``scopes`` (or admin); 401 without a token, else 403."""
        async def check(principal: Principal | None = Depends(self.optional)) -> Principal:
            return _demand(principal, scopes)
        return check

    def brand_reader(self) -> Callable[..., object]:
        """A dependency: the brand in the path itself, or a caller who may read every brand."""
        async def check(brand_id: Annotated[str, Path(max_length=MAX_ID)],
                        principal: Principal | None = Depends(self.optional)) -> Principal:
            return _demand(principal, (*READS_ANY_BRAND, f"brand:{brand_id.lower()}"))
        return check


def _demand(principal: Principal | None, scopes: tuple[str, ...]) -> Principal:
    if principal is None:
        raise HTTPException(401, "an API key is required", headers=CHALLENGE)
    if not principal.allows(*scopes):
        raise HTTPException(403, f"this key's scopes do not include {' or '.join(scopes)}")
    return principal
