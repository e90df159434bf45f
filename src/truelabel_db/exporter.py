"""An HTTP endpoint serving one Prometheus registry, for the follower's and the monitor's exporters.

The exposition is prometheus_client's (the text format, content negotiation, OpenMetrics and
gzip when the scraper asks); each exporter passes a registry of its own, so no metric lives in
prometheus_client's global registry and two exporters in one process never mix their figures.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server


@dataclass
class MetricsServer:
    """A running endpoint; ``close()`` stops it and frees its port."""

    httpd: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def serve_registry(registry: CollectorRegistry, port: int, host: str = "127.0.0.1") -> MetricsServer:
    """Serve ``registry`` on ``http://host:port/metrics`` from a daemon thread."""
    httpd, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(httpd, thread)
