"""Running a command and measuring it from the outside: wall time and its own peak memory.

The peak is the child's own high-water mark (``VmHWM`` of ``/proc/<pid>/status``), sampled
while it runs. ``os.wait4``'s ``ru_maxrss`` is not used for it: Linux carries the high-water
mark of the memory image a process had *before* ``exec`` into that figure, and a child forked
from a Python process starts as a copy of its parent, so ``ru_maxrss`` reports at least the
parent's size (a 400 MB parent running ``/bin/true`` gets 412 MB). The high-water mark only
grows, so the last sample (taken at most ``SAMPLE_SECONDS`` before the exit) is the peak, short
only of what the process might allocate in its very last moment.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SAMPLE_SECONDS = 0.02


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


class _PeakSampler:
    """The largest ``VmHWM`` seen for one process (0 until the first sample)."""

    def __init__(self, pid: int) -> None:
        self.status = Path(f"/proc/{pid}/status")
        self.peak_kb = 0

    def sample(self) -> None:
        try:
            text = self.status.read_text()
        except OSError:  # gone, or not Linux
            return
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                return


def run_measured(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> Measured:
    """Run ``argv`` to completion; the peak RSS is that one process's own, not its parent's."""
    started = time.perf_counter()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    proc = subprocess.Popen(list(argv), stdout=out_w, stderr=err_w, stdin=subprocess.DEVNULL,
                            env=dict(env) if env is not None else None)
    os.close(out_w)
    os.close(err_w)
    sampler = _PeakSampler(proc.pid)
    captured = _drain({out_r: [], err_r: []}, sampler.sample)
    while True:
        sampler.sample()
        pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(SAMPLE_SECONDS)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(time.perf_counter() - started, sampler.peak_kb / 1024, proc.returncode,
                    captured[out_r], captured[err_r])


def _drain(chunks: dict[int, list[bytes]], tick: Callable[[], None]) -> dict[int, str]:
    """Read both pipes to EOF without deadlocking on a full one, calling ``tick`` as time passes."""
    sel = selectors.DefaultSelector()
    for fd in chunks:
        sel.register(fd, selectors.EVENT_READ)
    remaining = set(chunks)
    while remaining:
        tick()
        for key, _ in sel.select(timeout=SAMPLE_SECONDS):
            data = os.read(key.fd, 65536)
            if data:
                chunks[key.fd].append(data)
            else:
                sel.unregister(key.fd)
                os.close(key.fd)
                remaining.discard(key.fd)
    return {fd: b"".join(parts).decode(errors="replace") for fd, parts in chunks.items()}
