"""Running a command and measuring it from the outside: wall time and its own peak memory."""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


def run_measured(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> Measured:
    """Run ``argv`` to completion; the peak RSS is that one child's, from ``os.wait4``."""
    started = time.perf_counter()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    proc = subprocess.Popen(list(argv), stdout=out_w, stderr=err_w, stdin=subprocess.DEVNULL,
                            env=dict(env) if env is not None else None)
    os.close(out_w)
    os.close(err_w)
    captured = _drain({out_r: [], err_r: []})
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(time.perf_counter() - started, usage.ru_maxrss / 1024, proc.returncode,
                    captured[out_r], captured[err_r])


def _drain(chunks: dict[int, list[bytes]]) -> dict[int, str]:
    """Read both pipes to EOF without deadlocking on a full one."""
    sel = selectors.DefaultSelector()
    for fd in chunks:
        sel.register(fd, selectors.EVENT_READ)
    remaining = set(chunks)
    while remaining:
        for key, _ in sel.select():
            data = os.read(key.fd, 65536)
            if data:
                chunks[key.fd].append(data)
            else:
                sel.unregister(key.fd)
                os.close(key.fd)
                remaining.discard(key.fd)
    return {fd: b"".join(parts).decode(errors="replace") for fd, parts in chunks.items()}
