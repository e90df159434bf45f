"""The load generator drives a real `serve` process and counts what it sees."""

from __future__ import annotations

from tests.fix_twin import Pair
from truelabel_db.bench.load_bench import ServiceProcess, Targets, measure


def test_a_short_load_against_serve_on_postgres_is_counted_without_errors(shared_pair: Pair) -> None:
    targets = Targets.from_legacy(shared_pair.legacy)
    service = ServiceProcess(shared_pair.url, None, cache=False, workers=1)
    try:
        service.wait_ready(timeout=60)
        read = measure(service.base, "postgresql", False, "read", targets, 4, 1.0)
        scan = measure(service.base, "postgresql", False, "scan", targets, 4, 1.0)
    finally:
        service.stop()
    assert read.requests > 10 and read.errors == 0 and read.writes == 0
    assert scan.errors == 0 and scan.writes > 0.5 * scan.requests
    assert read.p50_ms <= read.p99_ms


def test_a_service_that_cannot_start_says_why(tmp_path) -> None:  # noqa: ANN001
    service = ServiceProcess(str(tmp_path / "missing.db"), None, cache=False, workers=1)
    try:
        service.wait_ready(timeout=30)
    except RuntimeError as exc:
        assert "legacy database not found" in str(exc)
    else:
        raise AssertionError("serve started on a missing file")
    finally:
        service.stop()
