"""Invalidations between processes, over Redis pub/sub.

Each process drops from its L1 what another process invalidated. A process that cannot hear
the channel cannot trust its L1: when the subscription drops, L1 is emptied, and emptied again
when it comes back (invalidations sent in between were lost to it).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import redis

from truelabel_db.cache.redis_layer import CHANNEL

Handler = Callable[[list[str], list[str]], None]


class InvalidationBus:
    def __init__(self, url: str, origin: str, on_invalidate: Handler, on_drop: Callable[[], None],
                 retry: float = 0.5) -> None:
        self.url, self.origin = url, origin
        self._on_invalidate, self._on_drop = on_invalidate, on_drop
        self._retry = retry
        self._stop = threading.Event()
        self.connected = threading.Event()
        self._ever_connected = False
        self._thread = threading.Thread(target=self._run, name="cache-bus", daemon=True)

    def start(self, wait: float = 2.0) -> "InvalidationBus":
        self._thread.start()
        self.connected.wait(wait)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=3)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except (redis.RedisError, OSError, ValueError):
                pass
            if self.connected.is_set():
                self.connected.clear()
                self._on_drop()
            self._stop.wait(self._retry)

    def _listen(self) -> None:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1,
                                      health_check_interval=1)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(CHANNEL)
            if self._ever_connected:
                self._on_drop()  # what was cached during the outage may have missed an invalidation
            self._ever_connected = True
            self.connected.set()
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=0.5)
                if message is None:
                    pubsub.ping()  # notices a dead server within the socket timeout
                    pubsub.get_message(timeout=0.5)
                    continue
                self._deliver(message)
        finally:
            pubsub.close()
            client.close()

    def _deliver(self, message: dict[str, Any]) -> None:
        body = json.loads(message["data"])
        if body.get("origin") == self.origin:
            return
        if body.get("flush"):
            self._on_drop()  # another process forgot everything: so must this one's L1
        else:
            self._on_invalidate(list(body.get("keys", [])), list(body.get("groups", [])))
