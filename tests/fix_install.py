"""A core install (no extra) beside the test environment, for tests of what it can and cannot do.

Made without the network: a folder of links to every package of this environment except the
modules of the optional extras (and what only they bring), and an interpreter run without its
own site-packages (``-S``) on that folder and the source tree. In it those modules are simply
not there, as after ``pip install truelabel-db``.
"""

from __future__ import annotations

import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from truelabel_db.extras import EXTRAS

SOURCE = Path(__file__).resolve().parents[1] / "src"
# Beside the extras' own modules, the packages only they (or the tests) pull in.
ONLY_EXTRAS_BRING = ("starlette", "botocore", "s3transfer", "moto", "httpx", "aiohappyeyeballs", "aiosignal")


@dataclass(frozen=True)
class CoreInstall:
    python: tuple[str, ...]
    env: dict[str, str]
    absent: frozenset[str]


@pytest.fixture(scope="session")
def core_install(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoreInstall]:
    import sys

    absent = frozenset({m for modules in EXTRAS.values() for m in modules} | set(ONLY_EXTRAS_BRING))
    folder = tmp_path_factory.mktemp("core-site")
    paths = sysconfig.get_paths()
    for packages in {Path(paths["purelib"]), Path(paths["platlib"])}:   # this environment's packages
        for entry in packages.iterdir():
            top = entry.name.split("-")[0].split(".")[0].lower()
            if top in absent or entry.suffix == ".pth" or (folder / entry.name).exists():
                continue
            (folder / entry.name).symlink_to(entry)
    yield CoreInstall((sys.executable, "-S"), {"PYTHONPATH": f"{folder}:{SOURCE}"}, absent)
