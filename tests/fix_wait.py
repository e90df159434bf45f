"""Waiting for something to happen, instead of sleeping and hoping it did."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], object], what: str, seconds: float = 30.0, poll: float = 0.01) -> None:
    """Return as soon as ``condition()`` is true; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"after {seconds:g} s, still not: {what}")
        time.sleep(poll)
