"""The service's figures as Prometheus metrics: cache hits and misses per layer, primary switches,
group commits.

A prometheus_client collector reading the backend of the moment at each scrape; each app has a
registry of its own (``create_app`` makes it), so two apps in one process (tests) never share
a figure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from truelabel_db.cache.stats import EVENTS, LAYERS, hit_ratios
from truelabel_db.service.backend import Backend
from truelabel_db.service.group_commit import GroupCommitStats

__all__ = ["CONTENT_TYPE_LATEST", "exposition", "registry"]


class ServiceCollector(Collector):
    def __init__(self, backend: Callable[[], Backend], commits: Callable[[], GroupCommitStats] | None = None) -> None:
        self._backend, self._commits = backend, commits

    def collect(self) -> Iterator[Metric]:
        backend = self._backend()
        current = backend.current
        if current.cache is not None:
            yield from _cache(current.cache.stats.snapshot())
        yield GaugeMetricFamily("truelabel_service_primary_epoch", "Cutover epoch of the database serving now",
                                value=current.epoch)
        yield CounterMetricFamily("truelabel_service_switches", "Primary switches followed since start",
                                  value=backend.switches)
        yield CounterMetricFamily("truelabel_service_gate_waits", "Writes that waited at a raised cutover gate",
                                  value=backend.gate_waits)
        if self._commits is not None:
            stats = self._commits()
            yield CounterMetricFamily("truelabel_service_group_commits", "Transactions that committed scans",
                                      value=stats.batches)
            yield CounterMetricFamily("truelabel_service_group_committed_scans", "Scans committed in them",
                                      value=stats.scans)


def _cache(counts: dict[str, int]) -> Iterator[Metric]:
    hits = CounterMetricFamily("truelabel_cache_hits", "Cache hits by layer", labels=["layer"])
    misses = CounterMetricFamily("truelabel_cache_misses", "Cache misses by layer", labels=["layer"])
    for layer in LAYERS:
        hits.add_metric([layer], counts.get(f"{layer}_hits", 0))
        misses.add_metric([layer], counts.get(f"{layer}_misses", 0))
    yield hits
    yield misses
    for event in EVENTS:
        yield CounterMetricFamily(f"truelabel_cache_{event}", f"Cache {event.replace('_', ' ')} since start",
                                  value=counts.get(event, 0))
    ratio = GaugeMetricFamily("truelabel_cache_hit_ratio", "Hits over lookups reaching the layer", labels=["layer"])
    for layer, value in hit_ratios(counts).items():
        if value is not None:
            ratio.add_metric([layer], value)
    yield ratio


def registry(backend: Callable[[], Backend], commits: Callable[[], GroupCommitStats] | None = None
             ) -> CollectorRegistry:
    own = CollectorRegistry(auto_describe=False)
    own.register(ServiceCollector(backend, commits))
    return own


def exposition(own: CollectorRegistry) -> bytes:
    return generate_latest(own)
