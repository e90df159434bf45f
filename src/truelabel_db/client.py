"""What an app needs from the cutover, in three calls.

    gate = AppGate(redis_url="redis://127.0.0.1:6379/0", primary_file=Path("/etc/truelabel/primary.json"))
    if gate.wait_writable(timeout=2.0):      # hold a write briefly while the gate is up
        db = connect_to(gate.current_primary())
        ...

An app that honours the gate never writes while the cutover moves the primary; one that
ignores it is stopped by the fence in SQLite. When Redis cannot be reached the helper does not
guess: it raises, and the app decides (the plan's answer is to fail the write, not to risk it).
"""

from __future__ import annotations

import time
from pathlib import Path

import redis

from truelabel_db.cutover.gate import READONLY_KEY, GateError, Primary, read_primary


class AppGate:
    def __init__(self, redis_url: str | None = None, primary_file: Path | None = None,
                 poll_interval: float = 0.005) -> None:
        if redis_url is None and primary_file is None:
            raise ValueError("give a Redis URL, a primary file, or both")
        self._redis = (redis.Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1,
                                            decode_responses=True) if redis_url else None)
        self._file = primary_file
        self._poll = poll_interval

    def is_read_only(self) -> bool:
        """True while a cutover holds the gate. Without Redis there is no gate to honour."""
        if self._redis is None:
            return False
        try:
            return bool(self._redis.exists(READONLY_KEY))
        except redis.RedisError as exc:
            raise GateError(f"cannot read the cutover gate: {exc}") from exc

    def wait_writable(self, timeout: float) -> bool:
        """Wait until writes are allowed; False if the gate is still up after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while self.is_read_only():
            if time.monotonic() >= deadline:
                return False
            time.sleep(self._poll)
        return True

    def current_primary(self) -> Primary | None:
        """Which database is the primary now (Redis first, then the file)."""
        return read_primary(self._redis, self._file)
