"""What the benchmarks' process measurement reports: the child's own peak memory."""

from __future__ import annotations

import sys

from truelabel_db.bench.measure import run_measured

ALLOCATE_200MB = ("import time; x = bytearray(200 << 20)\n"
                  "for i in range(0, len(x), 4096): x[i] = 1\n"
                  "time.sleep(0.2)")


def test_a_small_child_of_a_large_parent_is_measured_at_its_own_size() -> None:
    ballast = bytearray(300 << 20)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    measured = run_measured(["/bin/sleep", "0.1"])
    assert measured.returncode == 0
    assert 0 < measured.peak_rss_mb < 50, measured.peak_rss_mb  # not the parent's 300 MB
    del ballast


def test_a_child_that_allocates_is_measured_at_its_peak() -> None:
    measured = run_measured([sys.executable, "-c", ALLOCATE_200MB])
    assert measured.returncode == 0
    assert 200 <= measured.peak_rss_mb < 300, measured.peak_rss_mb


def test_output_and_exit_status_come_through() -> None:
    measured = run_measured([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"])
    assert (measured.returncode, measured.stdout, measured.stderr) == (3, "out\n", "err\n")
