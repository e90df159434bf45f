"""``bench limits`` measures both limiters on the real Redis, and says so when Redis is not there."""

from __future__ import annotations

import json

from tests.fix_cli import run_cli
from truelabel_db.bench.limits_bench import run_limits_bench


def test_both_limiters_are_measured_and_nothing_is_refused(redis_url: str) -> None:
    doc = run_limits_bench(redis_url, admits=200, concurrency=5, rounds=1).to_dict()
    assert [r["limiter"].split()[0] for r in doc["runs"]] == ["this", "shared"]
    assert all(r["sequential_us"] > 0 and r["concurrent_per_second"] > 0 and r["refused"] == 0 for r in doc["runs"])


def test_the_command_prints_json_and_refuses_an_absent_redis(redis_url: str) -> None:
    done = run_cli("bench", "limits", "--redis", redis_url, "--admits", "100", "--rounds", "1", "--json")
    assert done.code == 0, done.stderr
    assert len(json.loads(done.stdout)["runs"]) == 2
    absent = run_cli("bench", "limits", "--redis", "redis://127.0.0.1:1/0", "--admits", "10", "--rounds", "1")
    assert absent.code != 0 and "did not answer" in absent.stderr and "Traceback" not in absent.stderr


