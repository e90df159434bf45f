"""Who is asking: the service's credentials, as FastAPI security dependencies.

A caller presents a token as ``Authorization: Bearer <token>`` (or ``X-API-Key: <token>``).
Two kinds are accepted:

- an API key (``truelabel-db keys create``; ``catalog.api_keys`` owns them), checked through
  the definer function on the configured PostgreSQL database (the keys live there whichever
  database the service is serving), its verdict remembered ``auth_cache_seconds`` so a request
  costs no round trip (a revocation therefore takes that long to reach a running service);
  the lookups run on a small thread limiter of their own (``LOOKUP_THREADS``, the size of their
  pool), at most ``MAX_LOOKUPS_WAITING`` at once per worker (past it, or when the database does
  not answer, 503 and ``Retry-After``), so made-up tokens neither queue without end nor take the
  reads' threads; a client whose tokens failed ``auth_failures_per_minute`` times in a minute is
  answered 429 without a lookup; known keys' verdicts and refusals are remembered apart (each an
  LRU with expiry), so a flood of made-up tokens cannot push a real key's verdict out;
- the operator's admin token, ``TRUELABEL_ADMIN_TOKEN`` in serve's environment, for a service
  without PostgreSQL (before the migration) or to bootstrap; at least ``MIN_ADMIN_TOKEN``
  characters, taken out of the environment by ``take_admin_token`` before any child process
  starts: only its SHA-256 travels in the workers' configuration.

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
import os
import threading
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Annotated

import psycopg
from anyio import CapacityLimiter
from cachetools import TTLCache
from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool, PoolTimeout

from truelabel_db.catalog import api_keys
from truelabel_db.errors import ConfigError
from truelabel_db.hotpaths.awaitable import in_thread
from truelabel_db.hotpaths.postgres_paths import connection_kwargs
from truelabel_db.ids import canonical_uuid
from truelabel_db.postgres import connect
from truelabel_db.service.config import ServiceConfig
from truelabel_db.service.limits import MAX_ID, FailureLimiter, retry_after
from truelabel_db.service.primary_choice import configured_postgres

ADMIN_TOKEN_ENV = "TRUELABEL_ADMIN_TOKEN"
MIN_ADMIN_TOKEN = 32
LOOKUP_THREADS = 2           # threads (and pooled connections) checking keys, per worker
MAX_LOOKUPS_WAITING = 32     # key checks running or waiting per worker; past it 503 at once
VERDICTS = 10_000            # verdicts remembered, each kind (known keys, refused tokens)
LOOKUP_WAIT = 5.0            # seconds a check waits for a pooled connection
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


def take_admin_token(environ: MutableMapping[str, str] | None = None) -> str | None:
    """The admin token's digest, the token removed from ``environ`` (default: ours) so that no
    process started from here on (uvicorn's workers, PgBouncer) inherits it; None when unset.
    ``ConfigError`` for a token shorter than ``MIN_ADMIN_TOKEN`` characters."""
    source = os.environ if environ is None else environ
    token = source.pop(ADMIN_TOKEN_ENV, None)
    if not token:
        return None
    if len(token) < MIN_ADMIN_TOKEN:
        raise ConfigError(f"{ADMIN_TOKEN_ENV} must be at least {MIN_ADMIN_TOKEN} characters "
                          "(e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    return admin_token_digest(token)


class AuthUnavailable(Exception):
    """Keys cannot be checked now: the database does not answer, or too many checks wait for it."""


class Authenticator:
    """Tokens to principals, with a short memory of each verdict (bounded, per process).

    Known keys and refused tokens are remembered apart, each an LRU with expiry: made-up tokens
    evict only other made-up tokens' refusals, never a real key's verdict.
    """

    def __init__(self, config: ServiceConfig) -> None:
        self._admin = bytes.fromhex(config.admin_token_sha256) if config.admin_token_sha256 else None
        self._url = configured_postgres(config)
        self._ttl = config.auth_cache_seconds
        self._pool: ConnectionPool | None = None
        self._opening = threading.Lock()   # the first lookups run in several threads at once
        self._prepare = config.prepare
        ttl = max(self._ttl, 1e-9)
        self._known: TTLCache[bytes, Principal] = TTLCache(VERDICTS, ttl)
        self._refused: TTLCache[bytes, bool] = TTLCache(VERDICTS, ttl)
        self._limiter: CapacityLimiter | None = None
        self._in_flight = 0

    def _as_admin(self, token: str) -> Principal | None:
        if self._admin is not None and hmac.compare_digest(hashlib.sha256(token.encode()).digest(), self._admin):
            return Principal(frozenset({ADMIN}), "admin-token")
        return None

    def remembered(self, token: str) -> Principal | None:
        """Who ``token`` is when that is known without asking the database: the admin token, or a
        key whose verdict is remembered; None otherwise."""
        admin = self._as_admin(token)
        if admin is not None or api_keys.prefix_of(token) is None:
            return admin
        return self._known.get(api_keys.digest(token))

    async def principal(self, token: str) -> Principal | None:
        """Who ``token`` is, None if nobody; ``AuthUnavailable`` when that cannot be told now.
        (``remembered``'s steps, with the prefix and the digest computed once.)"""
        admin = self._as_admin(token)
        prefix = api_keys.prefix_of(token)
        if admin is not None or prefix is None:
            return admin
        key = api_keys.digest(token)
        found = self._known.get(key)
        if found is not None or self._url is None:
            return found
        if key in self._refused:
            return None
        if self._in_flight >= MAX_LOOKUPS_WAITING:
            raise AuthUnavailable(f"{self._in_flight} key checks already wait for the database")
        self._in_flight += 1
        try:
            scopes = await in_thread(self._lookup, token, limiter=self._lookups())
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise AuthUnavailable(f"the keys' database does not answer ({type(exc).__name__})") from exc
        finally:
            self._in_flight -= 1
        found = Principal(frozenset(scopes), prefix) if scopes else None
        if self._ttl > 0:
            if found is not None:
                self._known[key] = found
            else:
                self._refused[key] = True
        return found

    def _lookups(self) -> CapacityLimiter:
        """The key checks' own threads: a flood of them never takes the reads' (anyio's shared limiter)."""
        if self._limiter is None:
            self._limiter = CapacityLimiter(LOOKUP_THREADS)
        return self._limiter

    def _lookup(self, token: str) -> tuple[str, ...] | None:
        with self._opening:
            if self._pool is None:
                assert self._url is not None
                self._pool = ConnectionPool(self._url, min_size=0, max_size=LOOKUP_THREADS, name="truelabel-auth",
                                            open=True,
                                            kwargs=connection_kwargs("truelabel-auth", prepare=self._prepare))
        with self._pool.connection(timeout=LOOKUP_WAIT) as conn:
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


def brand_in_path(brand_id: Annotated[str, Path(max_length=MAX_ID)]) -> str:
    """The brand id of the path, canonical (lower case, hyphenated); 404 if it is not a UUID."""
    canonical = canonical_uuid(brand_id)
    if canonical is None:
        raise HTTPException(404, "no such brand")
    return canonical


class Guards:
    """The dependencies handlers declare: who is asking, and whether their scopes allow it."""

    def __init__(self, authenticator: Callable[[], Authenticator], failures_per_minute: int = 0) -> None:
        self._auth = authenticator
        self.failures = FailureLimiter(failures_per_minute)

    async def optional(self, request: Request,
                       credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                       header_key: str | None = Depends(api_key_header)) -> Principal | None:
        """The caller, None when no token was given; 401 for a token that is not valid, 429 for a
        client that failed too often this minute, 503 when keys cannot be checked now."""
        token = credentials.credentials if credentials is not None else header_key
        if not token:
            return None
        authenticator, client = self._auth(), request.client.host if request.client else None
        found = authenticator.remembered(token)
        if found is None:
            wait = await self.failures.check(client)
            if wait:
                raise HTTPException(429, "too many failed authentications from this address; retry later",
                                    headers={"Retry-After": retry_after(wait)})
            try:
                found = await authenticator.principal(token)
            except AuthUnavailable as exc:
                raise HTTPException(503, "API keys cannot be checked now; retry shortly",
                                    headers={"Retry-After": "1"}) from exc
            if found is None:
                await self.failures.count(client)
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
        async def check(brand: Annotated[str, Depends(brand_in_path)],
                        principal: Principal | None = Depends(self.optional)) -> Principal:
            return _demand(principal, (*READS_ANY_BRAND, f"brand:{brand}"))
        return check


def _demand(principal: Principal | None, scopes: tuple[str, ...]) -> Principal:
    if principal is None:
        raise HTTPException(401, "an API key is required", headers=CHALLENGE)
    if not principal.allows(*scopes):
        raise HTTPException(403, f"this key's scopes do not include {' or '.join(scopes)}")
    return principal
