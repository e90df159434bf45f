"""The fixtures (one file per resource, ``fix_*.py``) and the markers every test gets by what it uses."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.fix_optional", "tests.fix_db", "tests.fix_legacy", "tests.fix_cluster", "tests.fix_replicas",
                  "tests.fix_redis", "tests.fix_twin", "tests.fix_monitor", "tests.fix_backup", "tests.fix_s3",
                  "tests.fix_tool_spy", "tests.fix_install"]

# A test using one of these runs on a private PostgreSQL cluster (it needs the server's binaries).
CLUSTER_FIXTURES = frozenset({"cluster", "plain_cluster", "cluster_dir", "preload_cluster", "cron_cluster",
                              "streaming_pair"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``cluster`` from the fixtures a test uses, so that the mark cannot drift from the truth."""
    for item in items:
        if CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)
