"""The service through a real PgBouncer in transaction mode: every hot path works, backends stay
bounded, and the pooler lives and dies with `serve`."""

from __future__ import annotations

import json
import os
import signal
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.fix_cli import run_cli
from tests.fix_twin import Pair
from tests.fix_wait import wait_until
from truelabel_db.bench.connection_scaling import measure_clients
from truelabel_db.bench.load_bench import ServiceProcess
from truelabel_db.errors import TargetError
from truelabel_db.hotpaths import PostgresHotPaths
from truelabel_db.service.pgbouncer import PgBouncer, PoolerSettings


@pytest.fixture
def bouncer(shared_pair: Pair, pgbouncer_bin: Path) -> Iterator[PgBouncer]:
    with PgBouncer(shared_pair.url, settings=PoolerSettings(pool_size=1)) as pooler:
        yield pooler


def backends_of(url: str) -> int:
    dbname = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND "
                            "backend_type = 'client backend' AND pid <> pg_backend_pid()", (dbname,)).fetchone()[0]


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


def alive(pid: int) -> bool:
    try:
        state = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State:"))
    except (OSError, StopIteration):
        return False
    return "Z" not in state


def get(base: str, path: str, token: str) -> bytes:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, path
        return response.read()


@pytest.mark.slow
def test_every_hot_path_answers_through_pgbouncer_as_it_does_directly(fresh_pair: Pair, pgbouncer_bin: Path) -> None:
    direct = PostgresHotPaths(fresh_pair.url, max_size=1)
    direct.refresh_dashboard()
    brand, first = direct.brands(1)[0], direct.product_list(1)[0]
    product, word, code = first["id"], first["name"].split()[0], first["qr_code"]
    expected = {f"/brands/{brand}/dashboard": direct.brand_dashboard(brand), "/validations/queue?limit=20":
                direct.validation_queue(20), f"/search?q={word}": direct.search(word)}
    direct.close()        # from here on, every backend of this database is PgBouncer's
    service = ServiceProcess(fresh_pair.url, None, cache=False, workers=2, pgbouncer_pool=3)
    peak = [0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.05):
            peak[0] = max(peak[0], backends_of(fresh_pair.url))

    watcher = threading.Thread(target=watch)
    try:
        service.wait_ready(timeout=60)
        watcher.start()
        paths = [f"/products/{product}", "/products?limit=50", f"/brands/{brand}/dashboard",
                 f"/brands/{brand}/analytics", "/validations/queue?limit=20", f"/search?q={word}"]
        answers: dict[str, set[bytes]] = {p: set() for p in paths}

        def reader() -> None:
            for _ in range(8):              # past psycopg's prepare threshold (5), on every path
                for path in paths:
                    answers[path].add(get(service.base, path, service.token))

        readers = [threading.Thread(target=reader) for _ in range(6)]
        for thread in readers:
            thread.start()
        for thread in readers:
            thread.join(timeout=120)
        request = urllib.request.Request(service.base + "/scans", data=b'{"qr_code": "%s", "user_agent": "via-pgb"}'
                                         % code.encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    finally:
        stop.set()
        service.stop()
        if watcher.is_alive():
            watcher.join()
    assert all(len(seen) == 1 for seen in answers.values())     # the same answer every time
    assert all(json.loads(next(iter(answers[path]))) == answer for path, answer in expected.items())
    assert 0 < peak[0] <= 3                                      # 2 workers × 20 client connections, 3 backends
    with psycopg.connect(fresh_pair.url) as conn:
        assert conn.execute("SELECT count(*) FROM qr_code_access WHERE user_agent = 'via-pgb'").fetchone()[0] == 1


def test_prepared_statements_must_be_off_behind_pgbouncer_in_transaction_mode(bouncer: PgBouncer) -> None:
    statement = "SELECT count(*) FROM products WHERE status = %s"

    def twice_six_times(prepare: bool) -> None:
        threshold = 5 if prepare else None
        with psycopg.connect(bouncer.url, autocommit=True, prepare_threshold=threshold) as one, \
                psycopg.connect(bouncer.url, autocommit=True, prepare_threshold=threshold) as two:
            for conn in (one, two):          # both clients share PgBouncer's one server connection
                for _ in range(6):
                    conn.execute(statement, ("VALIDATED",)).fetchone()

    twice_six_times(prepare=False)
    with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
        twice_six_times(prepare=True)


def test_the_hot_paths_repeat_through_pgbouncer_without_prepared_statement_errors(bouncer: PgBouncer) -> None:
    paths = PostgresHotPaths(bouncer.url, max_size=3, prepare=False)
    brand = paths.brands(1)[0]
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(7):
                paths.product_list(10), paths.brand_dashboard(brand), paths.qr_analytics(brand)
                paths.validation_queue(10), paths.search("Granola")
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            failures.append(exc)

    workers = [threading.Thread(target=work) for _ in range(3)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)
    paths.close()
    assert failures == []


def test_hundreds_of_clients_share_a_bounded_number_of_backends(shared_pair: Pair, pgbouncer_bin: Path) -> None:
    dbname = conninfo_to_dict(shared_pair.url)["dbname"]
    with PgBouncer(shared_pair.url, settings=PoolerSettings(pool_size=4)) as pooler:
        seen = measure_clients("PgBouncer", pooler.url, shared_pair.url, dbname, 300, 2.0, prepare=False)
        pools = {p["database"]: p for p in pooler.pools()}
    assert seen["connected"] == 300 and seen["refused"] == {} and seen["queries"] >= 300
    assert seen["backends"] <= 4
    assert pools[dbname]["pool_mode"] == "transaction"


@pytest.mark.slow
def test_killing_serve_takes_its_pgbouncer_with_it(shared_pair: Pair, pgbouncer_bin: Path) -> None:
    service = ServiceProcess(shared_pair.url, None, cache=False, workers=1, pgbouncer_pool=2)
    try:
        service.wait_ready(timeout=60)
        poolers = [pid for pid in children(service.process.pid)
                   if "pgbouncer" in Path(f"/proc/{pid}/cmdline").read_text()]
        assert len(poolers) == 1
        os.kill(service.process.pid, signal.SIGKILL)
        wait_until(lambda: not alive(poolers[0]), "PgBouncer gone with its serve", seconds=10)
    finally:
        service.stop()


def test_a_pgbouncer_that_cannot_reach_postgres_says_so_in_one_line(pgbouncer_bin: Path) -> None:
    with pytest.raises(TargetError, match="PgBouncer cannot reach PostgreSQL") as caught:
        PgBouncer("postgresql://postgres:secret@127.0.0.1:1/nowhere").start(timeout=2)
    assert "secret" not in str(caught.value) and "\n" not in str(caught.value)


def test_serve_refuses_pgbouncer_in_front_of_a_sqlite_file(shared_pair: Pair) -> None:
    result = run_cli("serve", "--database", str(shared_pair.legacy), "--pgbouncer")
    assert result.code == 6 and "SQLite" in result.stderr and "Traceback" not in result.stderr


def test_the_pooler_configuration_keeps_the_password_off_the_command_line(tmp_path: Path,
                                                                         pgbouncer_bin: Path) -> None:
    secret = uuid.uuid4().hex
    pooler = PgBouncer(f"postgresql://app:{secret}@127.0.0.1:5432/truelabel", tmp_path / "pgb")
    config = pooler.config_text()
    assert "pool_mode = transaction" in config and secret in config   # in the 0600 file, for the server
    assert secret not in pooler.url                                   # never in what clients use
