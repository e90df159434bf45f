"""Group commit: a scan is answered only after the commit that holds it, and a killed service
loses no scan it acknowledged."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from tests.fix_auth import ADMIN, ADMIN_HEADERS
from tests.fix_twin import Pair
from tests.fix_wait import wait_until
from truelabel_db.bench.load_bench import ServiceProcess
from truelabel_db.hotpaths import PostgresHotPaths, Scan
from truelabel_db.hotpaths.awaitable import InThreads
from truelabel_db.service import ServiceConfig, create_app
from truelabel_db.service.backend import data_error
from truelabel_db.service.group_commit import GroupCommitConfig, GroupCommitter, Overloaded

QUIET = dict(warm_on_start=False, refresh_interval=0, warm_interval=0, cache=False)


@contextmanager
def serving(url: str, **options: object) -> Iterator[TestClient]:
    with TestClient(create_app(ServiceConfig(database=url, **{**QUIET, **ADMIN, **options})),
                    headers=ADMIN_HEADERS) as client:   # as the operator: every endpoint
        yield client


def stored_agents(url: str, prefix: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT user_agent FROM qr_code_access WHERE user_agent LIKE %s", (prefix + "%",))
        return {r[0] for r in rows}


def some_code(url: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT qr_code FROM products WHERE qr_code IS NOT NULL LIMIT 1").fetchone()[0]


def poison_code(url: str) -> str:
    """A real code other than ``some_code``'s: an unknown code would not reach the INSERT at all."""
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT qr_code FROM products WHERE qr_code IS NOT NULL AND qr_code <> %s "
                            "ORDER BY qr_code LIMIT 1", (some_code(url),)).fetchone()[0]


def insert_waits_for_a_lock(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        return bool(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                 "AND query LIKE %s", ("%INSERT INTO qr_code_access%",)).fetchone()[0])


def post_scan(connection: http.client.HTTPConnection, code: str, agent: str) -> int:
    connection.request("POST", "/scans", json.dumps({"qr_code": code, "user_agent": agent}),
                       {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    return response.status


@pytest.mark.slow
def test_a_killed_service_loses_no_acknowledged_scan(fresh_pair: Pair) -> None:
    service = ServiceProcess(fresh_pair.url, None, cache=False, workers=1, extra=("--group-commit-ms", "5"))
    code, prefix = some_code(fresh_pair.url), f"kill9-{uuid.uuid4().hex[:8]}-"
    acknowledged: list[str] = []
    killed = threading.Event()

    def client(n: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
        for i in range(100_000):
            agent = f"{prefix}{n}-{i}"
            try:
                if post_scan(connection, code, agent) == 200:
                    acknowledged.append(agent)
            except (OSError, http.client.HTTPException):
                if killed.is_set():
                    return
                connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)

    try:
        service.wait_ready(timeout=60)
        clients = [threading.Thread(target=client, args=(n,)) for n in range(12)]
        for thread in clients:
            thread.start()
        wait_until(lambda: len(acknowledged) >= 300, "300 scans acknowledged", seconds=120)
        batches = service.health()["group_commit"]
        os.kill(service.process.pid, signal.SIGKILL)   # mid-load: batches queued and in flight
        killed.set()
        for thread in clients:
            thread.join(timeout=30)
    finally:
        service.stop()
    assert batches["batches"] < batches["scans"]          # scans really shared commits
    assert set(acknowledged) <= stored_agents(fresh_pair.url, prefix)


def test_a_scan_is_not_answered_before_its_commit(shared_pair: Pair) -> None:
    code, agent = some_code(shared_pair.url), f"held-{uuid.uuid4().hex}"
    answers: list[int] = []
    with serving(shared_pair.url) as client:
        with psycopg.connect(shared_pair.url) as locker:   # a transaction holding off every INSERT
            locker.execute("LOCK TABLE qr_code_access IN SHARE MODE")
            writer = threading.Thread(target=lambda: answers.append(
                client.post("/scans", json={"qr_code": code, "user_agent": agent}).status_code))
            writer.start()
            wait_until(lambda: insert_waits_for_a_lock(shared_pair.url), "the scan's INSERT waiting on the lock")
            assert writer.is_alive() and answers == []      # written, not committed: not answered
            assert stored_agents(shared_pair.url, agent) == set()
            locker.rollback()
        writer.join(timeout=10)
    assert answers == [200] and stored_agents(shared_pair.url, agent) == {agent}


def test_concurrent_scans_share_one_commit(shared_pair: Pair) -> None:
    code, prefix = some_code(shared_pair.url), f"shared-{uuid.uuid4().hex[:8]}-"
    with serving(shared_pair.url, group_commit_window=0.5) as client:
        answers: list[int] = []
        senders = [threading.Thread(target=lambda n=n: answers.append(client.post(
            "/scans", json={"qr_code": code, "user_agent": f"{prefix}{n}"}).status_code)) for n in range(10)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join(timeout=10)
        stats = client.get("/health").json()["group_commit"]
    assert answers == [200] * 10 and len(stored_agents(shared_pair.url, prefix)) == 10
    assert stats["batches"] < 10 and stats["largest"] > 1


@pytest.fixture
def poisoned(fresh_pair: Pair) -> Iterator[Pair]:
    """The database refuses one QR code's scans (a trigger), the way it would refuse bad data."""
    with psycopg.connect(fresh_pair.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE FUNCTION tl_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                             "IF NEW.qr_code = {} THEN RAISE EXCEPTION 'poisoned scan' USING ERRCODE = "
                             "'check_violation'; END IF; RETURN NEW; END $$").format(sql.Literal(poison_code(fresh_pair.url))))
        conn.execute("CREATE TRIGGER tl_poison BEFORE INSERT ON qr_code_access FOR EACH ROW "
                     "EXECUTE FUNCTION tl_poison()")
    yield fresh_pair


def test_a_scan_the_database_refuses_fails_alone_and_its_batch_is_kept(poisoned: Pair) -> None:
    code, poison, prefix = some_code(poisoned.url), poison_code(poisoned.url), f"batchmate-{uuid.uuid4().hex[:8]}-"
    answers: dict[str, int] = {}
    with serving(poisoned.url, group_commit_window=0.5) as client:
        def send(qr_code: str, agent: str) -> None:
            answers[agent] = client.post("/scans", json={"qr_code": qr_code, "user_agent": agent}).status_code

        senders = [threading.Thread(target=send, args=(code, f"{prefix}{n}")) for n in range(6)]
        senders.append(threading.Thread(target=send, args=(poison, f"{prefix}poison")))
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join(timeout=10)
        stats = client.get("/health").json()["group_commit"]
        refused = client.post("/scans", json={"qr_code": poison})
    assert answers.pop(f"{prefix}poison") == 422 and set(answers.values()) == {200}
    assert stored_agents(poisoned.url, prefix) == set(answers)
    assert stats["isolated_batches"] >= 1
    # the client learns that its data was refused, not what the database said (it may quote the row)
    assert refused.status_code == 422 and "poisoned scan" not in refused.json()["detail"]


def test_shutdown_writes_every_scan_already_accepted(shared_pair: Pair) -> None:
    code, prefix = some_code(shared_pair.url), f"shutdown-{uuid.uuid4().hex[:8]}-"
    paths = PostgresHotPaths(shared_pair.url, max_size=2)

    async def scenario() -> list[object]:
        committer = GroupCommitter(InThreads(paths).scan_many, GroupCommitConfig(window=0.3), data_error=data_error)
        committer.start()
        waiting = [asyncio.create_task(committer.submit(Scan(code, None, f"{prefix}{n}", datetime.now(timezone.utc))))
                   for n in range(20)]
        await asyncio.sleep(0)            # every scan queued, none written yet
        await committer.close()
        with pytest.raises(Overloaded):   # closed: new scans are refused, not queued
            await committer.submit(Scan(code))
        return await asyncio.gather(*waiting)

    try:
        found = asyncio.run(scenario())
    finally:
        paths.close()
    assert all(p is not None and p["qr_code"] == code for p in found)
    assert len(stored_agents(shared_pair.url, prefix)) == 20


def test_past_its_bound_the_queue_refuses_at_once_instead_of_growing(shared_pair: Pair) -> None:
    code = some_code(shared_pair.url)
    paths = PostgresHotPaths(shared_pair.url, max_size=2)

    async def scenario() -> None:
        config = GroupCommitConfig(window=0.5, max_queued=3, flushers=1)
        committer = GroupCommitter(InThreads(paths).scan_many, config).start()
        waiting = [asyncio.create_task(committer.submit(Scan(code, None, "bound")))]
        await asyncio.sleep(0.05)         # taken by the flusher, which gathers for 0.5 s
        waiting += [asyncio.create_task(committer.submit(Scan(code, None, "bound"))) for _ in range(3)]
        await asyncio.sleep(0.05)         # three queued: the bound
        with pytest.raises(Overloaded):
            await committer.submit(Scan(code, None, "bound"))
        await committer.close()
        await asyncio.gather(*waiting)

    try:
        asyncio.run(scenario())
    finally:
        paths.close()


def test_scans_reach_the_database_while_reads_fill_every_thread(shared_pair: Pair) -> None:
    from anyio import to_thread

    from truelabel_db.hotpaths.awaitable import InThreads, ReadAdmission

    code = some_code(shared_pair.url)
    paths = PostgresHotPaths(shared_pair.url, max_size=8)

    async def scenario() -> None:
        to_thread.current_default_thread_limiter().total_tokens = 4   # the readers' threads
        threads = InThreads(paths, write_threads=2, admission=ReadAdmission(limit=6))
        with psycopg.connect(shared_pair.url) as locker:
            locker.execute("LOCK TABLE validations IN ACCESS EXCLUSIVE MODE")   # every product list hangs
            reads = [asyncio.create_task(threads.product_list(5)) for _ in range(6)]
            await asyncio.sleep(0.3)
            with pytest.raises(Overloaded):                  # the seventh is refused, not queued
                await threads.product_list(5)
            found = await asyncio.wait_for(threads.scan_many([Scan(code, None, "not-behind-reads")]), 10)
            assert found[0] is not None and found[0]["qr_code"] == code
            locker.rollback()
        assert len(await asyncio.gather(*reads)) == 6

    try:
        asyncio.run(scenario())
    finally:
        paths.close()
