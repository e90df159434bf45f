"""The gate: a read-only flag and the current primary, published where the app reads them.

The plan's ``redis-cli SET db:readonly true EX 3600`` becomes a flag that carries its owner's
token and a short expiry refreshed while the cutover runs, so a crashed cutover lifts itself
within seconds and one cutover can never lower another's flag. The primary is published both
in Redis and in a JSON file (for apps without Redis), without credentials: apps keep theirs.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import redis

from truelabel_db.errors import ExitCode, TrueLabelError

READONLY_KEY = "db:readonly"
PRIMARY_KEY = "db:primary"
DEFAULT_TTL_MS = 30_000

# Delete the flag only if it is still ours (compare-and-delete, atomically in Redis).
_LOWER = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_REFRESH = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"


class GateError(TrueLabelError):
    """Redis is unreachable, or the gate is not in the state this step needs."""

    exit_code = ExitCode.GATE


@dataclass(frozen=True)
class Primary:
    kind: str          # "sqlite" or "postgresql"
    locator: str       # a path or a URL without password
    since_ms: int
    epoch: int         # grows with every switch, so a stale reader can tell

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Primary":
        return cls(**json.loads(text))


def connect_redis(url: str) -> redis.Redis:
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2, decode_responses=True)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise GateError(f"Redis at {_describe(url)} is unreachable: {exc}") from exc
    return client


def _describe(url: str) -> str:
    return url.split("@")[-1] if "@" in url else url


class Gate:
    """The cutover's side of the gate."""

    def __init__(self, client: redis.Redis, primary_file: Path | None = None) -> None:
        self.redis = client
        self.primary_file = primary_file
        self.token: str | None = None

    def raise_(self, ttl_ms: int = DEFAULT_TTL_MS, reason: str = "cutover") -> str:
        """Set the read-only flag; refuse if another owner's flag is already up."""
        token = f"{reason}:{secrets.token_hex(8)}:{int(time.time() * 1000)}"
        try:
            if not self.redis.set(READONLY_KEY, token, nx=True, px=ttl_ms):
                raise GateError(f"the gate is already raised by {self.redis.get(READONLY_KEY)!r}")
        except redis.RedisError as exc:
            raise GateError(f"cannot raise the gate: {exc}") from exc
        self.token = token
        return token

    def refresh(self, ttl_ms: int = DEFAULT_TTL_MS) -> bool:
        """Extend our flag's life; False if it expired or is not ours any more."""
        return bool(self.token and self.redis.eval(_REFRESH, 1, READONLY_KEY, self.token, ttl_ms))

    def lower(self) -> bool:
        """Remove our flag (never another's); True if it was ours and is now gone."""
        if self.token is None:
            return False
        try:
            removed = bool(self.redis.eval(_LOWER, 1, READONLY_KEY, self.token))
        except redis.RedisError as exc:
            raise GateError(f"cannot lower the gate (it expires by itself): {exc}") from exc
        self.token = None
        return removed

    def publish_primary(self, kind: str, locator: str) -> Primary:
        current = read_primary(self.redis, self.primary_file)
        primary = Primary(kind, locator, int(time.time() * 1000), (current.epoch + 1) if current else 1)
        self.redis.set(PRIMARY_KEY, primary.to_json())
        if self.primary_file is not None:
            write_primary_file(self.primary_file, primary)
        return primary


def write_primary_file(path: Path, primary: Primary) -> None:
    """Atomically: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(primary.to_json())
    os.replace(partial, path)


def read_primary(client: redis.Redis | None, primary_file: Path | None) -> Primary | None:
    if client is not None:
        try:
            text = client.get(PRIMARY_KEY)
        except redis.RedisError:
            text = None
        if text:
            return Primary.from_json(text if isinstance(text, str) else text.decode())
    if primary_file is not None and primary_file.exists():
        return Primary.from_json(primary_file.read_text())
    return None


class Heartbeat:
    """Keeps our gate raised while a step runs longer than its expiry, and notices a lapse.

    A refresh every third of the expiry; the gate has lapsed when a refresh finds it gone or
    not ours, or when no refresh has succeeded for a whole expiry (Redis unreachable meanwhile).
    A step that must not run after a lapse calls :meth:`check`.
    """

    def __init__(self, gate: Gate, ttl_ms: int = DEFAULT_TTL_MS) -> None:
        self.gate, self.ttl_ms = gate, ttl_ms
        self._stop = threading.Event()
        self._lapsed = threading.Event()
        self._last_ok = time.monotonic()
        self._thread = threading.Thread(target=self._beat, name="gate-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def lapsed(self) -> bool:
        return self._lapsed.is_set()

    def check(self, before: str) -> None:
        if self.lapsed:
            raise GateError(f"the gate lapsed before {before}: writers may have passed it")

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                ok = self.gate.refresh(self.ttl_ms)
            except redis.RedisError:
                ok = time.monotonic() - self._last_ok < self.ttl_ms / 1000
                if ok:
                    continue
            if ok:
                self._last_ok = time.monotonic()
            else:
                self._lapsed.set()
                return
