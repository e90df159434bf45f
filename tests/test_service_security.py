"""The service's payloads and writes: no personal data served, no scan of a code that names nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.fix_auth import ADMIN, ADMIN_HEADERS
from tests.fix_twin import Pair
from truelabel_db.service import ServiceConfig, create_app

QUIET = dict(warm_on_start=False, refresh_interval=0, warm_interval=0, cache=False)
SIDES = ["postgresql", "sqlite"]


@contextmanager
def serving(database: str, **options: object) -> Iterator[TestClient]:
    with TestClient(create_app(ServiceConfig(database=database, **{**QUIET, **ADMIN, **options})),
                    headers=ADMIN_HEADERS) as client:   # public endpoints answer the operator the same
        yield client


def database_of(pair: Pair, side: str) -> str:
    return pair.url if side == "postgresql" else str(pair.legacy)


def scans_stored(pair: Pair, side: str, code: str) -> int:
    if side == "postgresql":
        with psycopg.connect(pair.url) as conn:
            return conn.execute("SELECT count(*) FROM qr_code_access WHERE qr_code = %s", (code,)).fetchone()[0]
    with sqlite3.connect(pair.legacy) as conn:
        return conn.execute('SELECT count(*) FROM qr_code_accesses WHERE "qrCode" = ?', (code,)).fetchone()[0]


def emails_of_brands(pair: Pair) -> set[str]:
    with psycopg.connect(pair.url) as conn:
        return {r[0] for r in conn.execute("SELECT email FROM users WHERE role = 'BRAND'")}


def no_email_in(payload: object, emails: set[str]) -> bool:
    text = repr(payload)
    return "email" not in text and not any(e in text for e in emails)


@pytest.mark.parametrize("side", SIDES)
def test_product_payloads_carry_no_email_or_other_personal_data(shared_pair: Pair, side: str) -> None:
    emails = emails_of_brands(shared_pair)
    with serving(database_of(shared_pair, side)) as client:
        listed = client.get("/products?limit=50").json()
        assert listed and all(p["brand_user"] is None or set(p["brand_user"]) == {"id", "name"} for p in listed)
        one = client.get(f"/products/{listed[0]['id']}").json()
        word = listed[0]["name"].split()[0]
        found = client.get("/search", params={"q": word}).json()
        code = next(p["qr_code"] for p in listed if p["qr_code"])
        scanned = client.post("/scans", json={"qr_code": code}).json()
    for payload in (listed, one, found, scanned):
        assert no_email_in(payload, emails)


@pytest.mark.parametrize("side", SIDES)
def test_a_scan_of_an_unknown_code_answers_404_and_is_not_recorded(shared_pair: Pair, side: str) -> None:
    code = f"TL-UNKNOWN-{side}"
    with serving(database_of(shared_pair, side)) as client:
        answer = client.post("/scans", json={"qr_code": code})
    assert answer.status_code == 404 and answer.json()["recorded"] is False
    assert scans_stored(shared_pair, side, code) == 0


@pytest.mark.parametrize("side", SIDES)
def test_a_batch_rejects_unknown_codes_by_index_and_keeps_the_known(shared_pair: Pair, side: str) -> None:
    with serving(database_of(shared_pair, side)) as client:
        code = next(p["qr_code"] for p in client.get("/products?limit=20").json() if p["qr_code"])
        before = scans_stored(shared_pair, side, code)
        unknown = f"TL-NOWHERE-{side}"
        body = client.post("/scans/batch", json={"scans": [{"qr_code": code}, {"qr_code": unknown},
                                                            {"qr_code": code}]}).json()
    assert (body["accepted"], body["inserted"]) == (2, 2)
    assert [r["index"] for r in body["rejected"]] == [1] and "unknown" in body["rejected"][0]["error"]
    assert scans_stored(shared_pair, side, code) == before + 2 and scans_stored(shared_pair, side, unknown) == 0
