"""The follower's figures as Prometheus metrics, read from its stats at each scrape.

A collector rather than metric objects updated by the follower: the follower keeps one
``FollowStats`` and knows nothing of Prometheus, and a scrape always sees the figures of the
moment. Each exporter has a registry of its own (see :mod:`truelabel_db.exporter`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from truelabel_db.exporter import MetricsServer, serve_registry
from truelabel_db.follow.follower import FollowStats

GAUGES = (("position", "Last changelog sequence number applied to PostgreSQL"),
          ("lag_rows", "Changelog rows not yet applied"),
          ("rows_per_second", "Apply rate of the last batch"))
COUNTERS = (("changes_applied", "Changelog rows applied since the follower started"),
            ("batches", "Transactions applied since the follower started"),
            ("alerts", "Lag episodes above the threshold since the follower started"),
            ("retries", "Backoffs after a failure since the follower started"),
            ("trimmed", "Applied changelog rows trimmed from the legacy file since the follower started"),
            ("verifications", "Periodic verifications run since the follower started"),
            ("rows_resynced", "Rows the periodic verification found different and resynced"))


class FollowCollector(Collector):
    """``truelabel_follow_*`` from ``stats()`` at each scrape."""

    def __init__(self, stats: Callable[[], FollowStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        for name, text in GAUGES:
            yield GaugeMetricFamily(f"truelabel_follow_{name}", text, value=getattr(stats, name))
        yield GaugeMetricFamily("truelabel_follow_lag_seconds", "Age of the oldest change not yet applied",
                                value=stats.lag_ms / 1000)
        for name, text in COUNTERS:
            yield CounterMetricFamily(f"truelabel_follow_{name}", text, value=getattr(stats, name))


def registry(stats: Callable[[], FollowStats]) -> CollectorRegistry:
    """A registry of its own holding the follower's collector."""
    own = CollectorRegistry(auto_describe=False)
    own.register(FollowCollector(stats))
    return own


def render(stats: FollowStats) -> str:
    """The exposition text of one set of figures."""
    return generate_latest(registry(lambda: stats)).decode()


def serve(port: int, stats: Callable[[], FollowStats], host: str = "127.0.0.1") -> MetricsServer:
    """Serve the follower's metrics on ``http://host:port/metrics`` until ``close()``."""
    return serve_registry(registry(stats), port, host)
