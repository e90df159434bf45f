"""The service and cache commands: clear one-line errors, and working subcommands."""

from __future__ import annotations

import json

from tests.fix_cli import run_cli
from tests.fix_redis import PrivateRedis
from tests.fix_twin import Pair


def test_serve_on_a_missing_file_fails_in_one_line(tmp_path) -> None:  # noqa: ANN001
    result = run_cli("serve", "--database", str(tmp_path / "nope.db"))
    assert result.code == 2 and "legacy database not found" in result.stderr and "Traceback" not in result.stderr


def test_serve_without_a_database_says_how_to_give_one() -> None:
    result = run_cli("serve", env={"TRUELABEL_DATABASE": ""})
    assert result.code == 6 and "--database" in result.stderr


def test_serve_on_an_unreachable_server_fails_in_one_line_naming_why() -> None:
    result = run_cli("serve", "--database", "postgresql://nobody:secret@127.0.0.1:1/x")
    assert result.code == 4 and "cannot connect" in result.stderr and "secret" not in result.stderr
    # before: the pool's own warning first, then "pool initialization incomplete after 10 sec"
    assert len(result.stderr.strip().splitlines()) == 1 and "Connection refused" in result.stderr, result.stderr


def test_serve_on_a_database_that_does_not_exist_names_it() -> None:
    result = run_cli("serve", "--database", "host=127.0.0.1 port=5432 user=postgres dbname=tl_no_such_database")
    assert result.code == 4 and 'database "tl_no_such_database" does not exist' in result.stderr, result.stderr


def test_cache_invalidate_refuses_unknown_events_and_bad_context(redis_url: str) -> None:
    unknown = run_cli("cache", "invalidate", "product:explode", "--redis", redis_url)
    assert unknown.code == 6 and "unknown cache event" in unknown.stderr
    bad = run_cli("cache", "invalidate", "product:update", "--context", "{nope", "--redis", redis_url)
    assert bad.code == 6 and "not JSON" in bad.stderr


def test_cache_stats_without_redis_fails_in_one_line() -> None:
    server = PrivateRedis()   # a port nothing listens on
    result = run_cli("cache", "stats", "--redis", server.url)
    assert result.code == 6 and "unreachable" in result.stderr


def test_warm_then_stats_and_invalidate(shared_pair: Pair, redis_url: str) -> None:
    warmed = run_cli("cache", "warm", "--database", shared_pair.url, "--redis", redis_url, "--json")
    assert warmed.code == 0, warmed.stderr
    assert json.loads(warmed.stdout)["products"] > 0
    stats = run_cli("cache", "stats", "--redis", redis_url, "--json")
    assert stats.code == 0 and "hit_ratio" in json.loads(stats.stdout)
    done = run_cli("cache", "invalidate", "dashboard:refresh", "--redis", redis_url)
    assert done.code == 0 and "dashboard:refresh" in done.stderr
