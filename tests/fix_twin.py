"""A generated legacy file and its copy in PostgreSQL: the same data on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fix_db import drop_database_soon, make_database
from truelabel_db.capture import install_capture
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.legacy.generator import generate


@dataclass(frozen=True)
class Pair:
    legacy: Path
    url: str


def migrated_pair(folder: Path, scale: float, seed: int, *, capture: bool = False) -> Iterator[Pair]:
    """``capture``: change capture installed before the copy, so the follower can carry changes."""
    path = folder / "legacy.db"
    generate(path, scale, seed=seed)
    if capture:
        install_capture(path)
    name = f"tl_test_{uuid.uuid4().hex[:12]}"
    url = make_database(name)
    try:
        run_copy(path, url, CopyOptions(work_dir=folder / "w", workers=2))
        yield Pair(path, url)
    finally:
        drop_database_soon(name)


@pytest.fixture(scope="module")
def shared_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """One pair for a whole module of tests that only read (or write what they then ignore)."""
    yield from migrated_pair(tmp_path_factory.mktemp("pair"), 0.05, 21)


@pytest.fixture
def fresh_pair(tmp_path: Path) -> Iterator[Pair]:
    """A pair of the test's own, for tests that fence, switch or otherwise change it."""
    yield from migrated_pair(tmp_path, 0.02, 5)
