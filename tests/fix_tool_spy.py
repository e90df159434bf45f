"""PostgreSQL's real client tools, each call recorded: which arguments and which environment
variable names it got (never their values). The recorder then runs the real program, so the
test exercises the real tool; it only makes visible what ``ps`` and ``/proc`` would show."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from truelabel_db.embedded import BINDIR_ENV, find_server_binaries

SYSTEM_PYTHON = "/usr/bin/python3"  # the cluster's user may not reach a virtual environment's
SPIED = ("pg_basebackup", "pg_dump", "pg_restore", "psql", "pg_verifybackup")
RECORDER = """#!{python}
import json, os, sys
with open({log!r}, "a") as fh:
    fh.write(json.dumps({{"program": {name!r}, "argv": sys.argv[1:], "env": sorted(os.environ)}}) + "\\n")
os.execv({real!r}, [{real!r}, *sys.argv[1:]])
"""


@dataclass
class ToolCalls:
    log: Path

    def calls(self, program: str | None = None) -> list[dict[str, object]]:
        if not self.log.exists():
            return []
        found = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [c for c in found if program is None or c["program"] == program]


@pytest.fixture
def tool_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[ToolCalls]:
    """A folder of the server's programs (the cluster's system user can reach it) in which the
    client tools record their calls; ``TRUELABEL_PG_BINDIR`` points there for the test."""
    real = find_server_binaries()
    folder = Path(tempfile.mkdtemp(prefix="truelabel-tools-"))
    folder.chmod(0o755)
    log = folder / "calls.jsonl"
    log.touch()
    log.chmod(0o666)  # pg_basebackup runs as the cluster's user
    try:
        for program in real.iterdir():
            if program.name in SPIED:
                wrapper = folder / program.name
                wrapper.write_text(RECORDER.format(python=SYSTEM_PYTHON, log=str(log), name=program.name,
                                                   real=str(program)))
                wrapper.chmod(0o755)
            else:
                (folder / program.name).symlink_to(program)
        monkeypatch.setenv(BINDIR_ENV, str(folder))
        yield ToolCalls(log)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
