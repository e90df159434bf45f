"""POST /scans/batch: bad rows rejected by index with the reason, good rows kept, retries not doubled."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from tests.fix_auth import ADMIN, ADMIN_HEADERS
from tests.fix_twin import Pair
from truelabel_db.service import ServiceConfig, create_app
from truelabel_db.service.ingest import BatchRefused, Limits, parse_batch

QUIET = dict(warm_on_start=False, refresh_interval=0, warm_interval=0, cache=False)
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


@contextmanager
def serving(database: str, **options: object) -> Iterator[TestClient]:
    with TestClient(create_app(ServiceConfig(database=database, **{**QUIET, **ADMIN, **options})),
                    headers=ADMIN_HEADERS) as client:   # as the operator: every endpoint
        yield client


def agents_in_postgres(url: str, prefix: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return sorted(r[0] for r in conn.execute(
            "SELECT user_agent FROM qr_code_access WHERE user_agent LIKE %s", (prefix + "%",)))


def agents_in_sqlite(pair: Pair, prefix: str) -> list[str]:
    with sqlite3.connect(pair.legacy) as conn:
        return sorted(r[0] for r in conn.execute(
            'SELECT "userAgent" FROM qr_code_accesses WHERE "userAgent" LIKE ?', (prefix + "%",)))


def stored_agents(pair: Pair, side: str, prefix: str) -> list[str]:
    return agents_in_postgres(pair.url, prefix) if side == "postgresql" else agents_in_sqlite(pair, prefix)


def known_codes(url: str, count: int = 1) -> list[str]:
    """Codes that products carry: a scan of any other code is not recorded."""
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT qr_code FROM products WHERE qr_code IS NOT NULL "
                                           "ORDER BY qr_code LIMIT %s", (count,))]


def a_mixed_batch(prefix: str, code: str) -> tuple[list[object], dict[int, str]]:
    """Rows, and for each bad row's index a word its rejection must mention."""
    now = datetime.now(timezone.utc)
    good = lambda n, **more: {"qr_code": code, "user_agent": f"{prefix}{n}", **more}  # noqa: E731
    rows: list[object] = [
        good(0),
        {"user_agent": f"{prefix}x1"},                                            # 1: no code
        good(2, ip_address="200.10.20.30", scanned_at=(now - timedelta(days=2)).isoformat()),
        good(3, qr_code="X" * 201),                                              # 3: too long
        good(4, user_agent=f"{prefix}4\x00"),                                    # 4: NUL
        good(5, ip_address="999.1.1.1"),                                         # 5: not an address
        good(6, scanned_at="2026-11-29T10:00:00"),                               # 6: no offset
        good(7, scanned_at=(now + timedelta(hours=1)).isoformat()),              # 7: the future
        good(8, scanned_at=(now - timedelta(days=400)).isoformat()),             # 8: past retention
        good(9, id="not-a-uuid"),                                                # 9: bad id
        good(10, colour="blue"),                                                 # 10: unknown field
        "TL-JUST-A-STRING",                                                      # 11: not an object
        good(12, id=str(uuid.uuid4()), scanned_at=now.isoformat()),
        good(13, qr_code=42),                                                    # 13: not a string
    ]
    bad = {1: "qr_code", 3: "qr_code", 4: "NUL", 5: "ip_address", 6: "offset", 7: "future", 8: "retention",
           9: "id", 10: "colour", 11: "object", 13: "qr_code"}
    return rows, bad


@pytest.mark.parametrize("side", ["postgresql", "sqlite"])
def test_bad_rows_are_rejected_by_index_and_the_good_ones_kept(shared_pair: Pair, side: str) -> None:
    prefix = f"batch-{side}-{uuid.uuid4().hex[:8]}-"
    rows, bad = a_mixed_batch(prefix, known_codes(shared_pair.url)[0])
    database = shared_pair.url if side == "postgresql" else str(shared_pair.legacy)
    with serving(database) as client:
        answer = client.post("/scans/batch", json={"scans": rows})
    assert answer.status_code == 200
    body = answer.json()
    assert [r["index"] for r in body["rejected"]] == sorted(bad)
    for rejection in body["rejected"]:
        assert bad[rejection["index"]].lower() in rejection["error"].lower(), rejection
    assert body["accepted"] == body["inserted"] == 3 and body["duplicates"] == 0
    stored = stored_agents(shared_pair, side, prefix)
    assert stored == sorted(f"{prefix}{n}" for n in (0, 2, 12))


@pytest.mark.parametrize("side", ["postgresql", "sqlite"])
def test_a_retried_batch_with_ids_is_not_stored_twice(shared_pair: Pair, side: str) -> None:
    prefix = f"retry-{side}-{uuid.uuid4().hex[:8]}-"
    at = datetime.now(timezone.utc).isoformat()
    code = known_codes(shared_pair.url)[0]
    rows = [{"qr_code": code, "user_agent": f"{prefix}{n}", "id": str(uuid.uuid4()), "scanned_at": at}
            for n in range(5)]
    database = shared_pair.url if side == "postgresql" else str(shared_pair.legacy)
    with serving(database) as client:
        first = client.post("/scans/batch", json={"scans": rows}).json()
        again = client.post("/scans/batch", json={"scans": rows + [{**rows[0], "id": str(uuid.uuid4())}]}).json()
    assert (first["inserted"], first["duplicates"]) == (5, 0)
    assert (again["accepted"], again["inserted"], again["duplicates"]) == (6, 1, 5)
    stored = stored_agents(shared_pair, side, prefix)
    assert len(stored) == 6


@pytest.mark.parametrize(("body", "status", "says"), [
    (b"{not json", 400, "not JSON"),
    (b'[{"qr_code": "TL-1"}]', 422, '"scans" list'),
    (b'{"scans": {"qr_code": "TL-1"}}', 422, '"scans" list'),
    (b'{"scans": [' + b",".join([b'{"qr_code": "TL-1"}'] * 11) + b"]}", 413, "at most 10"),
])
def test_a_request_that_is_not_a_batch_is_refused_whole(shared_pair: Pair, body: bytes, status: int,
                                                         says: str) -> None:
    with psycopg.connect(shared_pair.url) as conn:
        before = conn.execute("SELECT count(*) FROM qr_code_access").fetchone()[0]
    with serving(shared_pair.url, batch_max_rows=10) as client:
        answer = client.post("/scans/batch", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == status and says in answer.json()["detail"]
    with psycopg.connect(shared_pair.url) as conn:
        assert conn.execute("SELECT count(*) FROM qr_code_access").fetchone()[0] == before


def test_a_batch_of_only_bad_rows_is_422_and_writes_nothing(shared_pair: Pair) -> None:
    with serving(shared_pair.url) as client:
        answer = client.post("/scans/batch", json={"scans": [{"qr_code": ""}, {"nope": 1}]})
    assert answer.status_code == 422
    assert answer.json() == {"accepted": 0, "inserted": 0, "duplicates": 0, "rejected": [
        {"index": 0, "error": answer.json()["rejected"][0]["error"]},
        {"index": 1, "error": answer.json()["rejected"][1]["error"]}]}


def test_a_row_the_database_refuses_is_rejected_by_index_and_the_rest_kept(fresh_pair: Pair) -> None:
    ok, poison = known_codes(fresh_pair.url, 2)
    with psycopg.connect(fresh_pair.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE FUNCTION tl_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                             "IF NEW.qr_code = {} THEN RAISE EXCEPTION 'poisoned scan' USING ERRCODE = "
                             "'check_violation'; END IF; RETURN NEW; END $$").format(sql.Literal(poison)))
        conn.execute("CREATE TRIGGER tl_poison BEFORE INSERT ON qr_code_access FOR EACH ROW "
                     "EXECUTE FUNCTION tl_poison()")
    rows = [{"qr_code": ok, "user_agent": "poison-batch-0"}, {"qr_code": poison},
            {"qr_code": ok, "user_agent": "poison-batch-2"}]
    with serving(fresh_pair.url) as client:
        body = client.post("/scans/batch", json={"scans": rows}).json()
    assert body["accepted"] == body["inserted"] == 2
    assert [(r["index"], "poisoned scan" in r["error"]) for r in body["rejected"]] == [(1, True)]
    assert agents_in_postgres(fresh_pair.url, "poison-batch-") == ["poison-batch-0", "poison-batch-2"]


def test_parse_batch_stamps_rows_without_a_time_with_the_moment_received() -> None:
    body = b'{"scans": [{"qr_code": "TL-1"}, {"qr_code": "TL-2", "scanned_at": "2026-11-29T11:00:00+01:00"}]}'
    batch = parse_batch(body, NOW, Limits())
    assert [s.moment() for s in batch.scans] == [NOW, datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc)]
    with pytest.raises(BatchRefused):
        parse_batch(b'{"scans": []}' * 2, NOW, Limits())
