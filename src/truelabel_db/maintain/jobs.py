"""The maintenance jobs by name, as ``maintain run JOB`` and the scheduler know them."""

from __future__ import annotations

from collections.abc import Callable

from truelabel_db.errors import ConfigError
from truelabel_db.maintain.cache_log import TrimCacheLog
from truelabel_db.maintain.partitions import PartitionMaintenance
from truelabel_db.maintain.refresh import RefreshViews
from truelabel_db.maintain.reindex import Reindex
from truelabel_db.maintain.runner import Job
from truelabel_db.maintain.vacuum import VacuumAnalyze

JOBS: dict[str, Callable[[], Job]] = {
    "vacuum-analyze": VacuumAnalyze,
    "reindex": Reindex,
    "partitions": PartitionMaintenance,
    "refresh-views": RefreshViews,
    "trim-cache-log": TrimCacheLog,
}


def job_named(name: str) -> Job:
    """A fresh job of that name, or a one-line error listing the names there are."""
    try:
        return JOBS[name]()
    except KeyError:
        raise ConfigError(f"no maintenance job {name!r}; jobs: {', '.join(JOBS)}") from None
