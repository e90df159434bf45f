"""A private PostgreSQL cluster for tests that must change server settings."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from truelabel_db.embedded import EmbeddedCluster


@pytest.fixture
def cluster_dir() -> Iterator[Path]:
    """A folder the cluster's system user can reach (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="truelabel-cluster-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def cluster(cluster_dir: Path) -> Iterator[EmbeddedCluster]:
    instance = EmbeddedCluster(cluster_dir / "pg")
    try:
        yield instance.start()
    finally:
        instance.stop()
