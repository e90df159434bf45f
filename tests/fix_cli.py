"""Running the real command line in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: Mapping[str, str] | None = None, timeout: float = 300, cwd: Path | None = None,
            python: Sequence[str] = (sys.executable,)) -> CliResult:
    """``truelabel-db ARGS`` in a subprocess (from ``cwd``, with the interpreter command ``python``)."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    full_env.pop("TRUELABEL_TARGET_URL", None) if env is None or "TRUELABEL_TARGET_URL" not in env else None
    proc = subprocess.run([*python, "-m", "truelabel_db", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
