"""The follower's figures as Prometheus metrics, served from a small thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from truelabel_db.follow.follower import FollowStats

GAUGES = (("position", "Last changelog sequence number applied to PostgreSQL"),
          ("lag_rows", "Changelog rows not yet applied"),
          ("lag_ms", "Age of the oldest change not yet applied, in milliseconds"),
          ("rows_per_second", "Apply rate of the last batch"),
          ("changes_applied", "Changelog rows applied since start"),
          ("alerts", "Lag episodes above the threshold since start"),
          ("retries", "Backoffs after a failure since start"))


def render(stats: FollowStats) -> str:
    lines = []
    for name, text in GAUGES:
        metric = f"truelabel_follow_{name}"
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} gauge", f"{metric} {getattr(stats, name)}"]
    return "\n".join(lines) + "\n"


def serve(port: int, stats: Callable[[], FollowStats]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path != "/metrics":
                self.send_error(404)
                return
            body = render(stats()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
