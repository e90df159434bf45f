"""Running the real command line in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: Mapping[str, str] | None = None, timeout: float = 300) -> CliResult:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    full_env.pop("TRUELABEL_TARGET_URL", None) if env is None or "TRUELABEL_TARGET_URL" not in env else None
    proc = subprocess.run([sys.executable, "-m", "truelabel_db", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, stdin=subprocess.DEVNULL)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
